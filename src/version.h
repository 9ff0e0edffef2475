/* version.h — the one place the release number lives (Makefile's `make
 * dist`, `popsift --version` and the manuals take it from here). */
#ifndef VERSION_H
#define VERSION_H

#define POPSIFT_VERSION "0.9.0"

#endif
