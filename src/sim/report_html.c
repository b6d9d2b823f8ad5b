/* report_html.c - a simulation report as one self-contained HTML page.
 *
 * The page holds, in this order: uPlot's stylesheet and code (embedded at build time from
 * the npm package, drv_sim_uplot_css/js: no network is needed to view it), a heading
 * with the scenario and the workload's source, the policy comparison (ratio to the lower
 * bound, makespan against the bound, wait percentiles), utilization and queue length over
 * virtual time (one line per policy and run), and the terminal tables as text. The
 * figures go in as one JSON blob in <script type="application/json" id="drv-data">,
 * read by a small inline script that builds the charts.
 *
 * Escaping: every string from the input (scenario, source, policy names) is written
 * through drv_markup_escape() (core/markup.h); inside the JSON blob every '<' is written as \u003c,
 * so no "</script>" or "<!--" can end or confuse the script element; the charts set
 * labels through textContent (uPlot does).
 *
 * Ownership: everything allocated here (the JSON tree and text, the table text) is freed
 * before returning; out and rep are borrowed. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/markup.h"
#include "sim/sim.h"

/* Writes JSON text s with every '<' as \u003c (valid JSON: '<' only occurs inside
 * strings), so the text cannot close or open markup inside a <script> element. */
static void json_in_script(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("\\u003c", out);
        else
            fputc(*s, out);
    }
}

/* v rounded to a multiple of 1/scale (fewer bytes in the blob); not finite: 0. */
static json_t *rounded(double v, double scale)
{
    return json_real(isfinite(v) ? round(v * scale) / scale : 0);
}

/* The row's label, as in the terminal table: the policy, with the run when the policy
 * made several. */
static void row_label(const drv_sim_result *r, char *buf, size_t len)
{
    if (r->runs > 1)
        snprintf(buf, len, "%s #%u", r->policy, r->run);
    else
        snprintf(buf, len, "%s", r->policy);
}

/* The JSON blob: the run's description and one object per result with its figures and
 * series. Returns a new string the caller frees. */
static char *report_blob(const drv_sim_report *rep)
{
    json_t *root = json_object();
    json_object_set_new(root, "scenario", json_string(rep->scenario));
    json_object_set_new(root, "source", json_string(rep->source));
    json_object_set_new(root, "workers", json_integer((json_int_t)rep->workers));
    json_object_set_new(root, "tests", json_integer((json_int_t)rep->tests));
    json_object_set_new(root, "seed", json_integer((json_int_t)rep->seed));
    json_t *arr = json_array();
    for (size_t k = 0; k < rep->n_results; k++) {
        const drv_sim_result *r = &rep->results[k];
        char label[DRV_SIM_NAME_MAX + 16];
        row_label(r, label, sizeof label);
        json_t *o = json_object();
        json_object_set_new(o, "label", json_string(label));
        json_object_set_new(o, "policy", json_string(r->policy));
        json_object_set_new(o, "run", json_integer(r->run));
        json_object_set_new(o, "baseline", json_boolean(r->baseline));
        json_object_set_new(o, "makespan_s", rounded(r->makespan_s, 1e3));
        json_object_set_new(o, "lower_bound_s", rounded(r->lower_bound_s, 1e3));
        json_object_set_new(o, "ratio_to_bound", rounded(r->ratio_to_bound, 1e4));
        json_object_set_new(o, "wait_p50_s", rounded(r->wait_p50_s, 1e3));
        json_object_set_new(o, "wait_p95_s", rounded(r->wait_p95_s, 1e3));
        json_object_set_new(o, "wait_p99_s", rounded(r->wait_p99_s, 1e3));
        json_object_set_new(o, "utilization_all", rounded(r->utilization_all, 1e4));
        json_t *series = json_object();
        json_t *util = json_array(), *queue = json_array();
        uint32_t n = r->n_series <= DRV_SIM_SERIES_MAX ? r->n_series : DRV_SIM_SERIES_MAX;
        for (uint32_t i = 0; i < n; i++) {
            json_array_append_new(util, rounded(r->series_util[i], 1e4));
            json_array_append_new(queue, json_integer((json_int_t)r->series_queue[i]));
        }
        json_object_set_new(series, "dt_s", json_real(r->series_dt_s));
        json_object_set_new(series, "utilization", util);
        json_object_set_new(series, "queue", queue);
        json_object_set_new(o, "series", series);
        json_array_append_new(arr, o);
    }
    json_object_set_new(root, "results", arr);
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(root);
    if (!text) /* jansson fails only when out of memory */
        text = drv_xstrdup("{\"results\":[]}");
    return text;
}

/* The page's own style, after uPlot's. */
static const char page_css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:16px 24px;color:#222;max-width:1200px}"
    "h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}"
    ".meta{color:#555;margin:0 0 8px}.chart{margin:8px 0 16px}"
    "pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px}";

/* The script that draws the charts from the blob (uPlot is defined before it). */
static const char page_js[] =
    "(function(){\"use strict\";\n"
    "var d=JSON.parse(document.getElementById(\"drv-data\").textContent),rows=d.results;\n"
    "var pal=[\"#1f77b4\",\"#ff7f0e\",\"#2ca02c\",\"#d62728\",\"#9467bd\",\"#8c564b\","
    "\"#e377c2\",\"#7f7f7f\",\"#bcbd22\",\"#17becf\"];\n"
    "function col(i){return pal[i%pal.length];}\n"
    "function W(){return Math.max(360,Math.min(1150,document.body.clientWidth-8));}\n"
    "function num(dg){return function(u,v){return v==null?\"--\":v.toFixed(dg);};}\n"
    "function pct(u,v){return v==null?\"--\":(100*v).toFixed(1)+\"%\";}\n"
    "function timeChart(id,key,ylab,fmt,axfmt){\n"
    " var el=document.getElementById(id);if(!rows.length){el.textContent=\"no results\";return;}\n"
    " var tables=rows.map(function(r){var s=r.series,v=s[key];"
    "return [v.map(function(_,k){return k*s.dt_s;}),v];});\n"
    " var data=uPlot.join(tables);\n"
    " var series=[{label:\"t (s)\",value:num(1)}].concat(rows.map(function(r,i){"
    "return {label:r.label,stroke:col(i),width:1.5,spanGaps:true,value:fmt};}));\n"
    " new uPlot({width:W(),height:320,scales:{x:{time:false}},series:series,"
    "axes:[{label:\"virtual time (s)\"},{label:ylab,size:60,values:axfmt}]},data,el);}\n"
    "function barChart(id,defs,ylab){\n"
    " var el=document.getElementById(id);if(!rows.length){el.textContent=\"no results\";return;}\n"
    " var xs=rows.map(function(_,i){return i;});\n"
    " var data=[xs].concat(defs.map(function(s){return rows.map(function(r){return "
    "r[s.key];});}));\n"
    " var series=[{label:\"policy\",value:function(u,v){return "
    "v==null||!rows[v]?\"--\":rows[v].label;}}]"
    ".concat(defs.map(function(s){var "
    "o={label:s.label,stroke:s.color,width:1,value:num(s.digits)};\n"
    "  if(s.bars){o.fill=s.color+\"99\";o.paths=uPlot.paths.bars({size:[0.6,80]});}\n"
    "  else{o.paths=function(){return null;};o.points={show:true,space:0,size:10,fill:s.color};}\n"
    "  return o;}));\n"
    " new uPlot({width:W(),height:320,padding:[12,56,0,8],series:series,scales:{x:{time:false,"
    "range:[-0.5,rows.length-0.5]},y:{range:function(u,mn,mx){return [0,mx>0?mx*1.1:1];}}},\n"
    "  axes:[{splits:function(){return xs;},values:function(u,sp){return sp.map(function(i){"
    "return rows[i]?rows[i].label:\"\";});},rotate:-25,size:90},{label:ylab,size:60}]},data,el);}\n"
    "barChart(\"drv-ratio\",[{key:\"ratio_to_bound\",label:\"makespan / lower bound\","
    "color:\"#1f77b4\",bars:true,digits:3}],\"ratio\");\n"
    "barChart(\"drv-makespan\",[{key:\"makespan_s\",label:\"makespan (s)\",color:\"#ff7f0e\","
    "bars:true,digits:1},{key:\"lower_bound_s\",label:\"lower bound (s)\",color:\"#222222\","
    "digits:1}],\"seconds\");\n"
    "barChart(\"drv-wait\",[{key:\"wait_p50_s\",label:\"wait p50 (s)\",color:\"#2ca02c\",digits:1},"
    "{key:\"wait_p95_s\",label:\"wait p95 (s)\",color:\"#ff7f0e\",digits:1},"
    "{key:\"wait_p99_s\",label:\"wait p99 (s)\",color:\"#d62728\",digits:1}],\"seconds\");\n"
    "timeChart(\"drv-util\",\"utilization\",\"utilization\",pct,"
    "function(u,v){return v.map(function(x){return (100*x).toFixed(0)+\"%\";});});\n"
    "timeChart(\"drv-queue\",\"queue\",\"tests queued\",num(0));\n"
    "})();\n";

int drv_sim_report_html(FILE *out, const drv_sim_report *rep, bool timing, drv_error *err)
{
    /* the terminal tables, as text */
    char *table = NULL;
    size_t table_len = 0;
    FILE *mem = open_memstream(&table, &table_len);
    if (!mem)
        return drv_error_set(err, "HTML report: cannot buffer the tables");
    drv_sim_report_print(mem, rep, timing);
    fclose(mem);

    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n"
          "<title>drover sim: ",
          out);
    drv_markup_escape(out, rep->scenario, false);
    fputs("</title>\n<style>\n", out);
    fwrite(drv_sim_uplot_css, 1, drv_sim_uplot_css_len, out);
    fprintf(out, "\n</style>\n<style>%s</style>\n<script>\n", page_css);
    fwrite(drv_sim_uplot_js, 1, drv_sim_uplot_js_len, out);
    fputs("\n</script>\n</head>\n<body>\n<h1>drover sim: scenario ", out);
    drv_markup_escape(out, rep->scenario, false);
    fprintf(out,
            "</h1>\n<p class=\"meta\">%zu workers, %zu tests, seed %llu; source: ", rep->workers,
            rep->tests, (unsigned long long)rep->seed);
    drv_markup_escape(out, rep->source, false);
    fputs("</p>\n"
          "<h2>Makespan over the lower bound</h2>\n<div class=\"chart\" id=\"drv-ratio\"></div>\n"
          "<h2>Makespan and lower bound</h2>\n<div class=\"chart\" id=\"drv-makespan\"></div>\n"
          "<h2>Wait time percentiles</h2>\n<div class=\"chart\" id=\"drv-wait\"></div>\n"
          "<h2>Utilization over time</h2>\n<p class=\"meta\">running tests / slots of the "
          "whole fleet, sampled at a fixed interval of virtual time from each run's "
          "start</p>\n<div class=\"chart\" id=\"drv-util\"></div>\n"
          "<h2>Queue length over time</h2>\n<p class=\"meta\">tests arrived and neither "
          "running nor final</p>\n<div class=\"chart\" id=\"drv-queue\"></div>\n"
          "<h2>Tables</h2>\n<pre>",
          out);
    drv_markup_escape(out, table, false);
    free(table);
    fputs("</pre>\n<script type=\"application/json\" id=\"drv-data\">", out);
    char *blob = report_blob(rep);
    json_in_script(out, blob);
    free(blob);
    fprintf(out, "</script>\n<script>\n%s</script>\n</body>\n</html>\n", page_js);
    fflush(out);
    if (ferror(out))
        return drv_error_set(err, "HTML report: write failed");
    return 0;
}
