/* seal.c: the process's sealing key and the AEAD that seals every page
 * leaving the process (the Redis store always, the swap file with
 * UPAGER_ENCRYPT=1). libsodium's AES-256-GCM where the CPU has AES-NI and
 * CLMUL, else XChaCha20-Poly1305. The key is drawn at init, lives in memory
 * the runtime never pages (left out of core dumps) and never leaves the
 * process: a page sealed by one run opens in no other.
 *
 * A seal binds the page to its identity: the associated data is the
 * store's handle and the seal's version, a counter that grows with every
 * seal, and the nonce is that version (with a random salt of the run):
 * unique under the key, so never reused. A copy swapped with another
 * handle's, an older copy of the same handle replayed, or any byte changed
 * fails to open. Sealing and opening are pure computation: no allocation,
 * no lock, safe in the fault handler. */
#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

typedef struct seal_key {
  crypto_aead_aes256gcm_state aes_state; /* expanded key, when aes */
  unsigned char key[32];
  unsigned char salt[16];
  int aes;
  pid_t pid; /* a child of fork() draws its own: the counter's copy would repeat nonces */
} seal_key_t;

static seal_key_t *key;
static _Atomic uint64_t versions;

int upg__seal_init(void) {
  if (key != NULL && key->pid == upg__os_getpid()) return 0;
  if (sodium_init() < 0) return -ENOSYS;
  seal_key_t *k = upg__os_alloc(sizeof *k);
  if (k == NULL) return -ENOMEM;
  (void)upg__os_advise(k, sizeof *k, MADV_DONTDUMP);
  randombytes_buf(k->key, sizeof k->key);
  randombytes_buf(k->salt, sizeof k->salt);
  k->aes = crypto_aead_aes256gcm_is_available();
  if (k->aes) crypto_aead_aes256gcm_beforenm(&k->aes_state, k->key);
  k->pid = upg__os_getpid();
  key = k; /* a parent's key, in a child, stays unused: its pages are gone */
  return 0;
}

const char *upg__seal_cipher(void) {
  return key != NULL && key->aes ? "AES-256-GCM" : "XChaCha20-Poly1305";
}

uint64_t upg__seal_next_version(void) { return atomic_fetch_add(&versions, 1) + 1; }

/* The nonce's first 8 bytes are the version; the rest the run's salt. */
static void make_nonce(uint64_t version, unsigned char *nonce, size_t len) {
  memcpy(nonce, &version, sizeof version);
  memcpy(nonce + sizeof version, key->salt, len - sizeof version);
}

static void make_ad(uint64_t id, uint64_t version, unsigned char ad[16]) {
  memcpy(ad, &id, 8);
  memcpy(ad + 8, &version, 8);
}

void upg__seal(const void *in, void *out, size_t len, uint64_t id, uint64_t version,
               unsigned char tag[UPG__SEAL_TAG]) {
  unsigned char ad[16], nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
  make_ad(id, version, ad);
  if (key->aes) {
    make_nonce(version, nonce, crypto_aead_aes256gcm_NPUBBYTES);
    crypto_aead_aes256gcm_encrypt_detached_afternm(out, tag, NULL, in, len, ad, sizeof ad, NULL,
                                                   nonce, &key->aes_state);
    return;
  }
  make_nonce(version, nonce, sizeof nonce);
  crypto_aead_xchacha20poly1305_ietf_encrypt_detached(out, tag, NULL, in, len, ad, sizeof ad, NULL,
                                                      nonce, key->key);
}

int upg__seal_open(void *buf, size_t len, uint64_t id, uint64_t version,
                   const unsigned char tag[UPG__SEAL_TAG]) {
  unsigned char ad[16], nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
  make_ad(id, version, ad);
  int rc;
  if (key->aes) {
    make_nonce(version, nonce, crypto_aead_aes256gcm_NPUBBYTES);
    rc = crypto_aead_aes256gcm_decrypt_detached_afternm(buf, NULL, buf, len, tag, ad, sizeof ad,
                                                        nonce, &key->aes_state);
  } else {
    make_nonce(version, nonce, sizeof nonce);
    rc = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(buf, NULL, buf, len, tag, ad,
                                                             sizeof ad, nonce, key->key);
  }
  return rc == 0 ? 0 : UPG_ESEALED;
}
