/* date.h — RFC 5322 date parsing, shared by IMAP delivery (internal
 * dates) and the rules (`age`). */
#ifndef DATE_H
#define DATE_H

#include <stddef.h>
#include <time.h>

/* An RFC 5322 date ("Tue, 1 Jul 2003 10:52:37 +0200"; obsolete forms
 * too: two- and three-digit years, no seconds, comments, zone names such
 * as EST, unknown zones as -0000): the time and the zone's offset in
 * minutes; -1 if it is no date. */
int date_parse(const char *s, size_t n, time_t *t, int *off_min);

/* "Jan".."Dec" for 0..11. */
const char *date_month_name(int m);

#endif
