/* test_analyzer.c - model id -> family matching, the family table's integrity, batch
 * size scaling, duration estimates and back-end ranks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "core/analyzer.h"
#include "core/tags.h"

static void test_family_of_model_ids(void **state)
{
    (void)state;
    static const struct {
        const char *model_id;
        const char *family; /* NULL: unknown (0) */
    } rows[] = {
        {"bert-base-uncased", "bert"},
        {"distilbert-base-uncased", "bert"},
        {"BERT-Large-Cased", "bert"},
        {"sentence-transformers/all-MiniLM-L6-v2", "bert"},
        {"roberta-base", "roberta"},
        {"distilroberta-base", "roberta"},
        {"FacebookAI/xlm-roberta-base", "xlm-roberta"},
        {"google/electra-small-discriminator", "electra"},
        {"microsoft/deberta-v3-base", "deberta"},
        {"albert-base-v2", "albert"},
        {"albert-large-v2", "albert"},
        {"t5-small", "t5"},
        {"google/flan-t5-base", "t5"},
        {"google/mt5-small", "t5"},
        {"facebook/bart-large-cnn", "bart"},
        {"gpt2", "gpt"},
        {"distilgpt2", "gpt"},
        {"EleutherAI/gpt-j-6b", "gpt"},
        {"EleutherAI/gpt-neo-125m", "gpt"},
        {"facebook/opt-125m", "opt"},
        {"bigscience/bloom-560m", "bloom"},
        {"tiiuae/falcon-7b", "falcon"},
        {"mistralai/Mistral-7B-v0.1", "mistral"},
        {"mistralai/Mixtral-8x7B-v0.1", "mixtral"},
        {"meta-llama/Llama-2-7b-hf", "llama"},
        {"TinyLlama/TinyLlama-1.1B-Chat-v1.0", "llama"},
        {"google/vit-base-patch16-224", "vit"},
        {"apple/mobilevit-small", "vit"},
        {"facebook/deit-base-distilled-patch16-224", "deit"},
        {"microsoft/resnet-50", "resnet"},
        {"facebook/convnext-tiny-224", "convnext"},
        {"facebook/detr-resnet-50", "detr"},
        {"hustvl/yolos-tiny", "yolo"},
        {"microsoft/swin-tiny-patch4-window7-224", "swin"},
        {"google/efficientnet-b0", "efficientnet"},
        {"microsoft/beit-base-patch16-224", "beit"},
        {"facebook/sam-vit-base", "sam"},
        {"facebook/dinov2-small", "dinov2"},
        {"openai/whisper-tiny", "whisper"},
        {"distil-whisper/distil-large-v3", "whisper"}, /* org names the family */
        {"openai/whisper-tiny.en", "whisper"},
        {"my-bert-experiments/vit-base", "vit"}, /* the name wins over the org */
        {"facebook/wav2vec2-base-960h", "wav2vec2"},
        {"facebook/hubert-large-ls960-ft", "hubert"},
        {"laion/clap-htsat", "clap"},
        {"facebook/encodec_24khz", "encodec"},
        {"microsoft/speecht5_tts", "speecht5"},
        {"facebook/musicgen-small", "musicgen"},
        {"openai/clip-vit-base-patch32", "clip"},
        {"openai/clip-vit-large-patch14", "clip"},
        {"xtuner/llava-llama-3-8b-v1_1", "llava"},
        {"google/vit-base-patch16-224-in21k", "vit"},
        {"timm/vit_base_patch16_224.augreg_in21k", "vit"},
        {"llava-hf/llava-1.5-7b-hf", "llava"},
        {"llava-hf/llava-v1.6-mistral-7b-hf", "llava"},
        {"Salesforce/blip-image-captioning-base", "blip"},
        {"Salesforce/blip2-opt-2.7b", "blip"},
        {"facebook/flava-full", "flava"},
        {"microsoft/git-base", "git"},
        {"HuggingFaceM4/idefics2-8b", "idefics"},
        /* current families */
        {"Qwen/Qwen2.5-7B-Instruct", "qwen"},
        {"Qwen/Qwen1.5-0.5B", "qwen"},
        {"Qwen/CodeQwen1.5-7B", "qwen"},
        {"Qwen/Qwen2-VL-7B-Instruct", "qwen-vl"},
        {"Qwen/Qwen-VL-Chat", "qwen-vl"},
        {"microsoft/phi-2", "phi"},
        {"microsoft/Phi-3-mini-4k-instruct", "phi"},
        {"microsoft/phi-4", "phi"},
        {"google/gemma-2b", "gemma"},
        {"google/gemma-2-9b-it", "gemma"},
        {"google/codegemma-7b", "gemma"},
        {"google/paligemma-3b-pt-224", "paligemma"},
        {"mosaicml/mpt-7b", "mpt"},
        {"stabilityai/stable-diffusion-2-1", "stable-diffusion"},
        {"runwayml/stable-diffusion-v1-5", "stable-diffusion"},
        {"stabilityai/sd-turbo", "stable-diffusion"},
        {"stabilityai/stable-diffusion-xl-base-1.0", "sdxl"},
        {"stabilityai/sdxl-turbo", "sdxl"},
        {"suno/bark-small", "bark"},
        {"suno/bark", "bark"},
        {"Salesforce/codegen-350M-mono", "codegen"},
        {"Salesforce/codegen2-1B", "codegen"},
        {"bigcode/starcoder2-3b", "starcoder"},
        {"bigcode/santacoder", "starcoder"},
        {"deepseek-ai/deepseek-coder-1.3b-base", "deepseek"},
        {"tiiuae/falcon-40b-instruct", "falcon"},
        {"llava-hf/llava-onevision-qwen2-0.5b-ov-hf", "llava"}, /* the longer pattern */
        {"openai/whisper-large-v3", "whisper"},
        {"openai/whisper-large-v3-turbo", "whisper"},
        {"Systran/faster-whisper-small", "whisper"},
        {"distil-whisper/distil-medium.en", "whisper"},
        /* short patterns only match as words */
        {"my-org/graphic-model", NULL},
        {"my-org/dumpty", NULL},
        {"my-org/adopt-model", NULL},
        {"digit-recognizer", NULL},
        {"my-sample-net", NULL},
        /* unknown */
        {"my-custom-model", NULL},
        {"", NULL},
        {"google/", NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int id = drv_analyzer_family(rows[i].model_id);
        const char *got = drv_family_get(id)->name;
        if (!rows[i].family) {
            if (id != DRV_FAMILY_UNKNOWN)
                fail_msg("%s: expected unknown, got %s", rows[i].model_id, got);
            continue;
        }
        if (id != drv_family_lookup(rows[i].family))
            fail_msg("%s: expected %s, got %s", rows[i].model_id, rows[i].family, got);
        assert_string_equal(got, rows[i].family);
    }
    assert_int_equal(drv_analyzer_family(NULL), DRV_FAMILY_UNKNOWN);
}

static void test_table_integrity(void **state)
{
    (void)state;
    int n = drv_family_count();
    assert_true(n > 30);
    assert_true(n <= DRV_FAMILY_MAX);
    assert_string_equal(drv_family_get(DRV_FAMILY_UNKNOWN)->name, "unknown");
    assert_int_equal(drv_family_get(DRV_FAMILY_UNKNOWN)->modality, DRV_MODALITY_UNKNOWN);
    for (int id = 1; id < n; id++) {
        const drv_family_info *f = drv_family_get(id);
        assert_non_null(f->name);
        assert_true(f->name[0] != '\0');
        assert_int_equal(drv_family_lookup(f->name), id); /* names are unique */
        assert_true(f->modality > DRV_MODALITY_UNKNOWN && f->modality < DRV_MODALITY_COUNT);
        assert_true(f->batch_size >= 1);
        assert_true(f->estimate_s > 0);
        /* At least one back-end; each a back-end tag, listed once; -1 only at the end. */
        assert_true(f->backends[0] >= DRV_TAG_FIRST_BACKEND);
        bool ended = false;
        for (int i = 0; i < DRV_FAMILY_BACKENDS_MAX; i++) {
            int b = f->backends[i];
            if (b == -1) {
                ended = true;
                continue;
            }
            if (ended || b < DRV_TAG_FIRST_BACKEND || b > DRV_TAG_LAST_BACKEND)
                fail_msg("family %s: bad back-end list at %d", f->name, i);
            assert_int_equal(drv_analyzer_backend_rank(id, b), i);
        }
        assert_true(f->browser == -1 ||
                    (f->browser >= DRV_TAG_FIRST_BROWSER && f->browser <= DRV_TAG_LAST_BROWSER));
        /* The family's own name is recognised as a model id. */
        if (drv_analyzer_family(f->name) != id)
            fail_msg("model id \"%s\" is not recognised as its own family", f->name);
    }
    /* Out-of-range ids give the unknown row. */
    assert_string_equal(drv_family_get(-3)->name, "unknown");
    assert_string_equal(drv_family_get(n)->name, "unknown");
    assert_int_equal(drv_family_lookup("no-such-family"), -1);
    assert_int_equal(drv_family_lookup(NULL), -1);
    assert_int_equal(drv_family_lookup("unknown"), DRV_FAMILY_UNKNOWN);
}

static void test_preferences(void **state)
{
    (void)state;
    static const struct {
        const char *family;
        drv_modality modality;
        int first_backend;
        int browser;
    } rows[] = {
        {"bert", DRV_MODALITY_TEXT, DRV_TAG_CUDA, DRV_TAG_EDGE},
        {"llama", DRV_MODALITY_TEXT, DRV_TAG_CUDA, DRV_TAG_EDGE},
        {"vit", DRV_MODALITY_VISION, DRV_TAG_CUDA, DRV_TAG_CHROMIUM},
        {"whisper", DRV_MODALITY_AUDIO, DRV_TAG_CUDA, DRV_TAG_FIREFOX},
        {"clap", DRV_MODALITY_AUDIO, DRV_TAG_CUDA, DRV_TAG_FIREFOX},
        {"clip", DRV_MODALITY_MULTIMODAL, DRV_TAG_CUDA, DRV_TAG_CHROMIUM},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const drv_family_info *f = drv_family_get(drv_family_lookup(rows[i].family));
        assert_string_equal(f->name, rows[i].family);
        assert_int_equal(f->modality, rows[i].modality);
        assert_int_equal(f->backends[0], rows[i].first_backend);
        assert_int_equal(f->browser, rows[i].browser);
    }
    /* Every family of a modality prefers the modality's browser. */
    static const int browser_of[DRV_MODALITY_COUNT] = {-1, DRV_TAG_EDGE, DRV_TAG_CHROMIUM,
                                                       DRV_TAG_FIREFOX, DRV_TAG_CHROMIUM};
    for (int id = 1; id < drv_family_count(); id++)
        assert_int_equal(drv_family_get(id)->browser, browser_of[drv_family_get(id)->modality]);
    /* A large language model is slower and batched smaller than bert. */
    const drv_family_info *llama = drv_family_get(drv_family_lookup("llama"));
    const drv_family_info *bert = drv_family_get(drv_family_lookup("bert"));
    assert_true(llama->estimate_s > bert->estimate_s);
    assert_true(llama->batch_size < bert->batch_size);
    assert_string_equal(drv_modality_name(DRV_MODALITY_AUDIO), "audio");
    assert_string_equal(drv_modality_name(DRV_MODALITY_MULTIMODAL), "multimodal");
    assert_string_equal(drv_modality_name((drv_modality)99), "unknown");
}

static void test_backend_rank(void **state)
{
    (void)state;
    int llama = drv_family_lookup("llama");
    assert_int_equal(drv_analyzer_backend_rank(llama, DRV_TAG_CUDA), 0);
    assert_int_equal(drv_analyzer_backend_rank(llama, DRV_TAG_ROCM), 1);
    assert_int_equal(drv_analyzer_backend_rank(llama, DRV_TAG_MPS), 2);
    assert_int_equal(drv_analyzer_backend_rank(llama, DRV_TAG_CPU), 3);
    assert_int_equal(drv_analyzer_backend_rank(llama, DRV_TAG_WEBNN), DRV_FAMILY_BACKENDS_MAX);
    assert_int_equal(drv_analyzer_backend_rank(llama, -1), DRV_FAMILY_BACKENDS_MAX);
    assert_int_equal(drv_analyzer_backend_rank(DRV_FAMILY_UNKNOWN, DRV_TAG_CPU),
                     DRV_FAMILY_BACKENDS_MAX);
    /* idefics lists only cuda and rocm: the -1 ending is not read as cpu (tag 0). */
    int idefics = drv_family_lookup("idefics");
    assert_int_equal(drv_analyzer_backend_rank(idefics, DRV_TAG_ROCM), 1);
    assert_int_equal(drv_analyzer_backend_rank(idefics, DRV_TAG_CPU), DRV_FAMILY_BACKENDS_MAX);
}

/* What a test is handed as DROVER_BATCH_SIZE: its own, else its family's for the
 * worker, else nothing. */
static void test_test_batch_size(void **state)
{
    (void)state;
    int vit = drv_family_lookup("vit");
    assert_int_equal(drv_analyzer_test_batch_size(0, vit, 16384), 32);
    assert_int_equal(drv_analyzer_test_batch_size(0, vit, 0), 8); /* CPU only: a quarter */
    assert_int_equal(drv_analyzer_test_batch_size(3, vit, 16384), 3);
    assert_int_equal(drv_analyzer_test_batch_size(5, DRV_FAMILY_UNKNOWN, 0), 5);
    assert_int_equal(drv_analyzer_test_batch_size(0, DRV_FAMILY_UNKNOWN, 16384), 0);
    assert_int_equal(drv_analyzer_test_batch_size(0, 12345, 16384), 0);
    assert_int_equal(drv_analyzer_test_batch_size(0, drv_family_lookup("sdxl"), 32768), 2);
}

static void test_batch_size_scaling(void **state)
{
    (void)state;
    int bert = drv_family_lookup("bert");
    uint32_t ref = drv_family_get(bert)->batch_size;
    assert_true(ref >= 8);
    static const struct {
        uint64_t gpu_mb;
        uint32_t num, den; /* expected = ref * num / den */
    } rows[] = {
        {16384, 1, 1}, {8192, 1, 2}, {32768, 2, 1}, {4096, 1, 4}, {24576, 3, 2}, {0, 1, 4},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_int_equal(drv_analyzer_batch_size(bert, rows[i].gpu_mb),
                         ref * rows[i].num / rows[i].den);
    /* Never 0: a tiny GPU, a CPU-only worker with a small family, the unknown family. */
    int llava = drv_family_lookup("llava");
    assert_int_equal(drv_analyzer_batch_size(bert, 1), 1);
    assert_int_equal(drv_analyzer_batch_size(llava, 0), 1);
    assert_int_equal(drv_analyzer_batch_size(llava, 8192), 1);
    assert_int_equal(drv_analyzer_batch_size(DRV_FAMILY_UNKNOWN, 0), 1);
    assert_int_equal(drv_analyzer_batch_size(12345, 16384), drv_family_get(0)->batch_size);
    /* A huge memory figure does not overflow; more memory never gives a smaller batch. */
    uint32_t huge = drv_analyzer_batch_size(bert, UINT64_MAX);
    assert_true(huge >= drv_analyzer_batch_size(bert, 81920));
    assert_true(huge <= ref * 64);
}

static void test_estimates(void **state)
{
    (void)state;
    int bert = drv_family_lookup("bert");
    double base = drv_family_get(bert)->estimate_s;
    static const struct {
        const char *type;
        double factor;
    } rows[] = {
        {NULL, 1},        {"unit", 0.25}, {"UNIT", 0.25}, {"integration", 1}, {"performance", 3},
        {"benchmark", 3}, {"e2e", 1},     {"", 1},        {"units", 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_float_equal(drv_analyzer_estimate_s(bert, rows[i].type), base * rows[i].factor,
                           1e-9);
    assert_float_equal(drv_analyzer_estimate_s(drv_family_lookup("llama"), NULL), 120, 1e-9);
    assert_float_equal(drv_analyzer_estimate_s(bert, NULL), 8, 1e-9);
    assert_true(drv_analyzer_estimate_s(DRV_FAMILY_UNKNOWN, "unit") > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_family_of_model_ids), cmocka_unit_test(test_table_integrity),
        cmocka_unit_test(test_preferences),         cmocka_unit_test(test_backend_rank),
        cmocka_unit_test(test_batch_size_scaling),  cmocka_unit_test(test_test_batch_size),
        cmocka_unit_test(test_estimates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
