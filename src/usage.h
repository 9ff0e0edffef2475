/* usage.h — the command line's usage, help and version text (usage.c):
 * one table that `--help`, `help COMMAND`, every usage error and the
 * manual's SYNOPSIS (checked by tests/integration/test_cli.py) agree on. */
#ifndef USAGE_H
#define USAGE_H

#include <stdio.h>

/* The synopsis of cmd ("run", "import"...), or of every command when
 * cmd is NULL, headed "usage: ". */
void usage_print(FILE *out, const char *cmd);
/* "popsift: MESSAGE" and cmd's synopsis on stderr; returns EX_USAGE. */
int  usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* popsift help [COMMAND], --help: stdout, 0; an unknown COMMAND is a usage error. */
int  cmd_help(const char *cmd);
/* 1 if cmd is a command word. */
int  usage_known(const char *cmd);

#endif
