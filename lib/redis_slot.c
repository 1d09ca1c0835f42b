/* redis_slot.c: which of Redis Cluster's 16384 slots holds a key, as the
 * cluster specification defines it: CRC16-CCITT (XMODEM: polynomial
 * 0x1021, initial value 0) of the key's hash tag, modulo 16384. */
#include "internal.h"

static uint16_t crc16(const unsigned char *p, size_t len) {
  uint16_t crc = 0;
  for (size_t i = 0; i < len; i++) {
    crc ^= (uint16_t)(p[i] << 8);
    for (int bit = 0; bit < 8; bit++)
      crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
  }
  return crc;
}

unsigned upg__redis_slot(const char *key, size_t len) {
  size_t open = 0;
  while (open < len && key[open] != '{') open++;
  if (open < len) {
    size_t close = open + 1;
    while (close < len && key[close] != '}') close++;
    if (close < len && close > open + 1) {
      key += open + 1;
      len = close - open - 1;
    }
  }
  return crc16((const unsigned char *)key, len) % UPG__REDIS_SLOTS;
}
