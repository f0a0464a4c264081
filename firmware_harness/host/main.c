/* Host runner: the test vectors through blazeear_pp, device log on stdout. */
#include <stdio.h>

#include "blazeear_model.h"
#include "blazeear_runner.h"

static void write_stdout(void *user, const char *text, int len)
{
    (void)user;
    fwrite(text, 1, (size_t)len, stdout);
}

int main(void)
{
    static blazeear_log_t log;
    int status;

    blazeear_log_init(&log, write_stdout, NULL);
    status = blazeear_run_vectors(&log, &blazeear_model, BLAZEEAR_MODEL_NAME, NULL, NULL, 0);
    fflush(stdout);
    return status;
}
