/* fuzz-conf.c — libFuzzer target: the config parser (src/popsift.h).
 * The input, NUL-terminated, is parsed as a config file; on success the
 * result is walked (names, destinations) and freed, on failure the error
 * must be set and the struct left empty. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "popsift.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int once, debug;
	if (!once) {
		debug = getenv("FUZZ_DEBUG") != NULL;   /* say why an input did not parse */
		/* expand_tilde must not depend on the caller's environment */
		setenv("HOME", "/nonexistent/fuzz-home", 1);
		once = 1;
	}
	char *text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	struct config cf;
	char *err = NULL;
	int rc = conf_parse("fuzz.conf", text, &cf, &err);
	free(text);
	if (rc == 0) {
		if (cf.state == NULL || cf.file == NULL)
			abort();
		for (struct account *a = cf.accounts; a; a = a->next)
			if (a->name == NULL || strlen(a->name) == 0)
				abort();
		conf_free(&cf);
	} else {
		if (debug)
			fprintf(stderr, "fuzz-conf: %s\n", err ? err : "(no message)");
		if (rc != -1 || err == NULL || cf.accounts != NULL || cf.file != NULL)
			abort();
	}
	free(err);
	return 0;
}
