/* The mix workload (see mix_work.h). Each round changes the data a little
 * (a few list keys, one matrix element, one byte of the text), so no round
 * repeats the previous one and the final CRC depends on every round. */
#include "mix_work.h"

#include <stddef.h>

/* ---------------------------------------------------------------- CRC-16 */

uint16_t mix_crc16(uint16_t crc, const uint8_t* bytes, uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) {
    crc = (uint16_t)(crc ^ (uint16_t)(bytes[i] << 8));
    for (int bit = 0; bit < 8; ++bit) {
      const uint32_t shifted = (uint32_t)crc << 1;
      crc = (uint16_t)((crc & 0x8000u) != 0 ? shifted ^ 0x1021u : shifted);
    }
  }
  return crc;
}

/* Little-endian, so the CRC is the same on any host. */
static uint16_t crc_u32(uint16_t crc, uint32_t value) {
  const uint8_t bytes[4] = {(uint8_t)value, (uint8_t)(value >> 8), (uint8_t)(value >> 16),
                            (uint8_t)(value >> 24)};
  return mix_crc16(crc, bytes, 4);
}

/* xorshift32: the workspace's initial contents. */
static uint32_t next_random(uint32_t* state) {
  uint32_t x = *state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *state = x;
  return x;
}

/* A key in [-0x2000, 0x2000): signed compares matter. */
static int32_t key_of(uint32_t bits) {
  return (int32_t)(bits & 0x3FFFu) - 0x2000;
}

/* ----------------------------------------------------------- linked list */

enum mix_order { ORDER_BY_KEY, ORDER_BY_ID };

static int node_after(const struct mix_node* p, const struct mix_node* q, enum mix_order order) {
  return order == ORDER_BY_KEY ? p->key > q->key : p->id > q->id;
}

/* Position of the first node with `key`, or -1. */
static int32_t list_find(const struct mix_node* node, int32_t key) {
  for (int32_t at = 0; node != NULL; node = node->next, ++at) {
    if (node->key == key) return at;
  }
  return -1;
}

static struct mix_node* list_reverse(struct mix_node* node) {
  struct mix_node* reversed = NULL;
  while (node != NULL) {
    struct mix_node* next = node->next;
    node->next = reversed;
    reversed = node;
    node = next;
  }
  return reversed;
}

/* Stable bottom-up merge sort of a non-empty list: runs of 1, 2, 4, ...
 * merged pairwise until one merge covers the whole list. */
static struct mix_node* list_sort(struct mix_node* list, enum mix_order order) {
  for (uint32_t run = 1;; run *= 2) {
    struct mix_node* p = list;
    struct mix_node* tail = NULL;
    uint32_t merges = 0;
    list = NULL;
    while (p != NULL) {
      ++merges;
      struct mix_node* q = p;
      uint32_t p_size = 0;
      while (p_size < run && q != NULL) {
        ++p_size;
        q = q->next;
      }
      uint32_t q_size = run;
      while (p_size > 0 || (q_size > 0 && q != NULL)) {
        struct mix_node* taken;
        if (p_size == 0) {
          taken = q;
          q = q->next;
          --q_size;
        } else if (q_size == 0 || q == NULL || !node_after(p, q, order)) {
          taken = p;
          p = p->next;
          --p_size;
        } else {
          taken = q;
          q = q->next;
          --q_size;
        }
        if (tail != NULL) {
          tail->next = taken;
        } else {
          list = taken;
        }
        tail = taken;
      }
      p = q;
    }
    tail->next = NULL;
    if (merges <= 1) return list;
  }
}

/* Every node's key and id, weighted by its position: two orders that differ
 * anywhere give different digests (almost surely). */
static uint32_t list_digest(const struct mix_node* node) {
  uint32_t digest = 0;
  for (uint32_t at = 1; node != NULL; node = node->next, ++at) {
    digest += ((uint32_t)node->key ^ ((uint32_t)node->id << 16)) * at;
  }
  return digest;
}

/* Changes the key of every 8th node, from a start that moves each round. */
static void list_perturb(struct mix_node* node, uint32_t round) {
  for (uint32_t at = 0; node != NULL; node = node->next, ++at) {
    if (((at + round) & 7u) == 0) node->key = key_of((uint32_t)node->key * 5u + round);
  }
}

static uint16_t list_round(struct mix_workspace* ws, uint32_t round, uint16_t crc) {
  /* Find two keys that are in the list and two that almost surely are not. */
  for (uint32_t k = 0; k < 4; ++k) {
    const int32_t key = (k & 1u) != 0 ? key_of(round * 2654435761u + k)
                                      : ws->nodes[(round * 5u + k * 29u) % MIX_LIST_NODES].key;
    crc = crc_u32(crc, (uint32_t)list_find(ws->head, key));
  }
  ws->head = list_reverse(ws->head);
  crc = crc_u32(crc, (uint32_t)ws->head->key);
  list_perturb(ws->head, round);
  ws->head = list_sort(ws->head, ORDER_BY_KEY);
  crc = crc_u32(crc, list_digest(ws->head));
  ws->head = list_sort(ws->head, ORDER_BY_ID);
  return crc_u32(crc, list_digest(ws->head));
}

/* ---------------------------------------------------------------- matrix */

#define N MIX_MATRIX_N

/* Keeps matrix elements in [-128, 127], so products and their sums fit. */
static int16_t wrap8(int32_t value) {
  return (int16_t)(((value + 128) & 0xFF) - 128);
}

static uint16_t matrix_round(struct mix_workspace* ws, uint32_t round, uint16_t crc) {
  /* C = A * B */
  for (int row = 0; row < N; ++row) {
    for (int col = 0; col < N; ++col) {
      int32_t sum = 0;
      for (int k = 0; k < N; ++k)
        sum += (int32_t)ws->a[row * N + k] * ws->b[k * N + col];
      ws->c[row * N + col] = sum;
    }
  }
  /* A += s, then C += A, reduced to a sum, a maximum and a count of odd elements. */
  const int32_t s = (int32_t)(round & 0x1Fu) - 16;
  uint32_t total = 0;
  uint32_t odd = 0;
  int32_t max = ws->c[0];
  for (int j = 0; j < N * N; ++j) {
    ws->a[j] = wrap8(ws->a[j] + s);
    ws->c[j] += ws->a[j];
    total += (uint32_t)ws->c[j];
    odd += (uint32_t)ws->c[j] & 1u;
    if (ws->c[j] > max) max = ws->c[j];
  }
  const uint32_t changed = (round * 7u) % (N * N);
  ws->b[changed] = wrap8(ws->b[changed] ^ (int32_t)(round & 0x7Fu));
  crc = crc_u32(crc, total);
  crc = crc_u32(crc, (uint32_t)max);
  return crc_u32(crc, odd);
}

#undef N

/* ---------------------------------------------------- the number scanner */

/* A token ends at ',', ' ' or the end of the text. */
enum scan_state {
  SCAN_START,
  SCAN_SIGN,
  SCAN_ZERO,
  SCAN_DECIMAL,
  SCAN_HEX_PREFIX,
  SCAN_HEX,
  SCAN_BAD
};

struct scan_totals {
  uint32_t decimals;
  uint32_t hexes;
  uint32_t bad;
  uint32_t sum; /* decimals added (negated when signed '-'), hexes mixed in */
};

static int32_t hex_digit(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

static void scan_finish(struct scan_totals* totals, enum scan_state state, uint32_t value,
                        int negative) {
  switch (state) {
    case SCAN_START:
      break;
    case SCAN_ZERO:
    case SCAN_DECIMAL:
      ++totals->decimals;
      totals->sum += negative ? 0u - value : value;
      break;
    case SCAN_HEX:
      ++totals->hexes;
      totals->sum = (totals->sum << 3 | totals->sum >> 29) ^ value;
      break;
    case SCAN_SIGN:
    case SCAN_HEX_PREFIX:
    case SCAN_BAD:
      ++totals->bad;
      break;
  }
}

static struct scan_totals scan_numbers(const char* text) {
  struct scan_totals totals = {0, 0, 0, 0};
  enum scan_state state = SCAN_START;
  uint32_t value = 0;
  int negative = 0;
  for (;; ++text) {
    const char ch = *text;
    if (ch == ',' || ch == ' ' || ch == '\0') {
      scan_finish(&totals, state, value, negative);
      if (ch == '\0') return totals;
      state = SCAN_START;
      value = 0;
      negative = 0;
      continue;
    }
    const int is_digit = ch >= '0' && ch <= '9';
    const uint32_t digit = (uint32_t)(ch - '0');
    switch (state) {
      case SCAN_START:
        if (ch == '-' || ch == '+') {
          negative = ch == '-';
          state = SCAN_SIGN;
        } else if (ch == '0') {
          state = SCAN_ZERO;
        } else if (is_digit) {
          value = digit;
          state = SCAN_DECIMAL;
        } else {
          state = SCAN_BAD;
        }
        break;
      case SCAN_SIGN:
      case SCAN_DECIMAL:
        if (is_digit) {
          value = value * 10u + digit;
          state = SCAN_DECIMAL;
        } else {
          state = SCAN_BAD;
        }
        break;
      case SCAN_ZERO:
        if (ch == 'x' || ch == 'X') {
          state = SCAN_HEX_PREFIX;
        } else if (is_digit) {
          value = digit;
          state = SCAN_DECIMAL;
        } else {
          state = SCAN_BAD;
        }
        break;
      case SCAN_HEX_PREFIX:
      case SCAN_HEX: {
        const int32_t h = hex_digit(ch);
        if (h >= 0) {
          value = value * 16u + (uint32_t)h;
          state = SCAN_HEX;
        } else {
          state = SCAN_BAD;
        }
        break;
      }
      case SCAN_BAD:
        break;
    }
  }
}

/* Appends `count` random digits of `base` (10 or 16). */
static void append_digits(char* text, uint32_t* at, uint32_t count, uint32_t base,
                          uint32_t* state) {
  static const char kDigits[] = "0123456789abcdefABCDEF";
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t r = next_random(state);
    const uint32_t pick = base == 16 ? r % 22u : r % 10u;
    text[(*at)++] = kDigits[pick];
  }
}

/* Fills the text with numbers of every kind the scanner knows, and some it
 * rejects; returns its length. */
static uint32_t build_text(char* text, uint32_t* state) {
  uint32_t at = 0;
  /* The longest token is 7 bytes, and its separator one more. */
  while (at + 9 < MIX_TEXT_BYTES) {
    const uint32_t r = next_random(state);
    const uint32_t digits = 1 + (r >> 8) % 4u;
    switch (r % 5u) {
      case 0: /* decimal */
        append_digits(text, &at, digits + 1, 10, state);
        break;
      case 1: /* signed decimal */
        text[at++] = (r & 0x1000u) != 0 ? '-' : '+';
        append_digits(text, &at, digits, 10, state);
        break;
      case 2: /* hex */
        text[at++] = '0';
        text[at++] = (r & 0x1000u) != 0 ? 'x' : 'X';
        append_digits(text, &at, digits, 16, state);
        break;
      case 3: /* a decimal with a stray letter */
        append_digits(text, &at, digits, 10, state);
        text[at++] = (char)('g' + (r >> 16) % 20u);
        append_digits(text, &at, 1, 10, state);
        break;
      default: /* zero */
        text[at++] = '0';
        break;
    }
    text[at++] = (r & 0x20000u) != 0 ? ' ' : ',';
  }
  text[at] = '\0';
  return at;
}

static uint16_t text_round(struct mix_workspace* ws, uint32_t length, uint32_t round,
                           uint16_t crc) {
  /* One byte changed for this round only. */
  static const char kReplacements[] = "0123456789abcdefxX-+, q";
  const uint32_t at = (round * 37u + 11u) % length;
  const char saved = ws->text[at];
  ws->text[at] = kReplacements[(round * 7u) % (sizeof kReplacements - 1)];
  const struct scan_totals totals = scan_numbers(ws->text);
  ws->text[at] = saved;
  crc = crc_u32(crc, totals.decimals | totals.hexes << 8 | totals.bad << 16);
  return crc_u32(crc, totals.sum);
}

/* ------------------------------------------------------------------- run */

static uint32_t mix_init(struct mix_workspace* ws, uint32_t seed) {
  uint32_t state = seed != 0 ? seed : 1;
  for (uint32_t n = 0; n < MIX_LIST_NODES; ++n) {
    ws->nodes[n].next = n + 1 < MIX_LIST_NODES ? &ws->nodes[n + 1] : NULL;
    ws->nodes[n].key = key_of(next_random(&state));
    ws->nodes[n].id = (uint16_t)n;
    ws->nodes[n].reserved = 0;
  }
  ws->head = &ws->nodes[0];
  for (uint32_t j = 0; j < MIX_MATRIX_N * MIX_MATRIX_N; ++j) {
    ws->a[j] = wrap8((int32_t)(next_random(&state) & 0xFFu));
    ws->b[j] = wrap8((int32_t)(next_random(&state) & 0xFFu));
    ws->c[j] = 0;
  }
  return build_text(ws->text, &state);
}

uint16_t mix_run(struct mix_workspace* ws, uint32_t seed, uint32_t iterations) {
  const uint32_t text_length = mix_init(ws, seed);
  uint16_t crc = 0xFFFF;
  for (uint32_t round = 0; round < iterations; ++round) {
    crc = list_round(ws, round, crc);
    crc = matrix_round(ws, round, crc);
    crc = text_round(ws, text_length, round, crc);
  }
  return crc;
}
