/* pkce.h — PKCE (RFC 7636) S256 and the random strings of the OAuth2
 * flows: SHA-256 and base64url here, so no crypto library is needed. */
#ifndef PKCE_H
#define PKCE_H

#include <stddef.h>
#include <stdint.h>

void sha256(const void *data, size_t len, uint8_t out[32]);
/* base64url without padding of n bytes into out (room for 4*(n+2)/3+1). */
void base64url(const uint8_t *in, size_t n, char *out);
/* code_challenge = BASE64URL(SHA256(verifier)): 43 characters + NUL. */
void pkce_challenge(const char *verifier, char out[44]);
/* nbytes from the kernel's random source, base64url: 0, or -1 (*err). */
int  random_token(size_t nbytes, char *out, char **err);

#endif
