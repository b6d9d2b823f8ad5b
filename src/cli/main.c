/* main.c - placeholder for the drover binary until the CLI lands (the lead replaces it). */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "drover: demo not built yet\n");
    return 1;
}
