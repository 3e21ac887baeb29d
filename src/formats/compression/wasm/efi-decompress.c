/*
 * EFI 1.1 / Tiano decoder for wasm32, freestanding (no libc). It mirrors the JS decoder in
 * ../efi-decompress.ts step for step (the same 16-bit decoding tables, the same over-read and
 * Kraft checks), so that it succeeds on exactly the streams that decoder accepts and returns the
 * same bytes and the same count of consumed bits. It reports only success or failure: on any
 * failure the caller runs the JS decoder again, which gives the coded error with its offsets.
 * Why WebAssembly at all: a cold Node process interprets the JS decode loop for its first
 * thousands of symbols, while a WebAssembly module is compiled before it runs.
 *
 * Built by scripts/build-wasm.sh into ../efi-decompress-wasm.generated.ts.
 */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef long long i64;

/* EDK2 BaseUefiDecompressLib names (efi-format.ts holds the same values for the JS side). */
#define NC 510
#define NT 19
#define TBIT 5
#define CBIT 9
#define THRESHOLD 3
#define MAXNP 31
#define NPT 31
#define MAX_CODE_LENGTH 16
#define LENGTH_SHIFT 9
#define SYMBOL_MASK 511
#define NONE SYMBOL_MASK

/*
 * V8 starts every function in Liftoff and recompiles a hot one with TurboFan on a background
 * thread, whose CPU the process pays: kept apart, only the small hot functions are recompiled,
 * where decode() with everything inlined cost about 4 ms more CPU over the Coffee Lake FSP.
 */
#define NOINLINE __attribute__((noinline))

#define OK 0
#define FAILED 1

extern u8 __heap_base;

static const u8 *input;
static u32 input_length;
static u32 input_position;
static i64 fetched_bytes;
static u32 bit_buffer;
static u32 pending_byte;
static u32 pending_bits;
static double consumed;

static u8 pt_length[NPT + 1];
static u8 c_length[NC];
static u16 pt_table[1 << MAX_CODE_LENGTH];
static u16 c_table[1 << MAX_CODE_LENGTH];
static u32 length_count[MAX_CODE_LENGTH + 2];
static u32 next_code[MAX_CODE_LENGTH + 2];

/* Where the caller places the input, then the output: linear memory past the module's data. */
__attribute__((export_name("heap_base"))) u32 heap_base(void) { return (u32)&__heap_base; }

/* Bits of the stream the last successful decode used (a double: an i64 would reach JS as BigInt). */
__attribute__((export_name("consumed_bits"))) double consumed_bits(void) { return consumed; }

static i64 used_bits(void) {
  i64 bits = fetched_bytes * 8 - 32 - (i64)pending_bits;
  return bits < 0 ? 0 : bits;
}

static int overread(void) { return used_bits() > (i64)input_length * 8; }

/* EDK2 FillBuf: drops `count` (<= 29) bits; past the end of the input it feeds zero bytes. */
static void fill(u32 count) {
  bit_buffer <<= count;
  while (count > pending_bits) {
    count -= pending_bits;
    bit_buffer |= pending_byte << count;
    pending_byte = input_position < input_length ? input[input_position++] : 0;
    fetched_bytes++;
    pending_bits = 8;
  }
  pending_bits -= count;
  bit_buffer |= pending_byte >> pending_bits;
}

static u32 get_bits(u32 count) {
  u32 value = bit_buffer >> (32 - count);
  fill(count);
  return value;
}

/*
 * Fills table[from, to) with value, four entries per 64-bit store: a cold process runs this in
 * V8's baseline compiler (Liftoff), which emits each store as written, and the three 65,536-entry
 * tables of every block were about a third of the decode time of the Coffee Lake FSP's streams.
 */
typedef unsigned long long __attribute__((may_alias)) u64_alias;
NOINLINE static void fill16(u16 *table, u32 from, u32 to, u16 value) {
  while (from < to && (from & 3) != 0) table[from++] = value;
  u64_alias pattern = value * 0x0001000100010001ull;
  u64_alias *wide = (u64_alias *)(table + from);
  u32 words = (to - from) >> 2;
  for (u32 i = 0; i < words; i++) wide[i] = pattern;
  from += words << 2;
  while (from < to) table[from++] = value;
}

NOINLINE static int make_table(u32 alphabet_size, const u8 *lengths, u16 *table) {
  for (u32 i = 0; i < MAX_CODE_LENGTH + 2; i++) length_count[i] = 0;
  for (u32 symbol = 0; symbol < alphabet_size; symbol++) length_count[lengths[symbol]]++;
  u32 kraft = 0;
  for (u32 length = 1; length <= MAX_CODE_LENGTH; length++) {
    kraft += length_count[length] << (MAX_CODE_LENGTH - length);
  }
  if (kraft == 0) {
    fill16(table, 0, 1u << MAX_CODE_LENGTH, NONE);
    return OK;
  }
  if (kraft != 1u << MAX_CODE_LENGTH) return FAILED;
  next_code[1] = 0;
  for (u32 length = 1; length <= MAX_CODE_LENGTH; length++) {
    next_code[length + 1] = next_code[length] + (length_count[length] << (MAX_CODE_LENGTH - length));
  }
  for (u32 symbol = 0; symbol < alphabet_size; symbol++) {
    u32 length = lengths[symbol];
    if (length == 0) continue;
    u32 code = next_code[length];
    u32 end = code + (1u << (MAX_CODE_LENGTH - length));
    next_code[length] = end;
    fill16(table, code, end, (u16)(symbol | (length << LENGTH_SHIFT)));
  }
  return OK;
}

/* EDK2 ReadPTLen. */
NOINLINE static int read_pt_lengths(u32 alphabet_size, u32 count_bits, u32 zero_run_after) {
  u32 count = get_bits(count_bits);
  if (count == 0) {
    u32 only = get_bits(count_bits);
    if (only >= alphabet_size) return FAILED;
    fill16(pt_table, 0, 1u << MAX_CODE_LENGTH, (u16)only);
    for (u32 i = 0; i < NPT + 1; i++) pt_length[i] = 0;
    return OK;
  }
  u32 index = 0;
  while (index < count && index < NPT) {
    u32 length = bit_buffer >> 29;
    if (length == 7) {
      u32 mask = 1u << 28;
      while (mask != 0 && (bit_buffer & mask) != 0) {
        mask >>= 1;
        length++;
      }
      if (length > MAX_CODE_LENGTH) return FAILED;
    }
    fill(length < 7 ? 3 : length - 3);
    pt_length[index++] = (u8)length;
    if (index == zero_run_after) {
      u32 zeros = get_bits(2);
      while (zeros-- > 0 && index < NPT) pt_length[index++] = 0;
    }
  }
  for (u32 i = index < alphabet_size ? index : alphabet_size; i < NPT + 1; i++) pt_length[i] = 0;
  return make_table(alphabet_size, pt_length, pt_table);
}

/* EDK2 ReadCLen. */
NOINLINE static int read_c_lengths(void) {
  u32 count = get_bits(CBIT);
  if (count == 0) {
    u32 only = get_bits(CBIT);
    if (only >= NC) return FAILED;
    for (u32 i = 0; i < NC; i++) c_length[i] = 0;
    fill16(c_table, 0, 1u << MAX_CODE_LENGTH, (u16)only);
    return OK;
  }
  u32 index = 0;
  while (index < count && index < NC) {
    u32 entry = pt_table[bit_buffer >> (32 - MAX_CODE_LENGTH)];
    u32 symbol = entry & SYMBOL_MASK;
    if (symbol >= NT) return FAILED;
    u32 take = entry >> LENGTH_SHIFT;
    /* 0: one zero length; 1: 3..18 zeros (4-bit count); 2: 20..531 zeros (9-bit count). */
    u32 zeros = 1;
    if (symbol == 1) {
      take += 4;
      zeros = ((bit_buffer >> (32 - take)) & 0xf) + 3;
    } else if (symbol == 2) {
      take += CBIT;
      zeros = ((bit_buffer >> (32 - take)) & 0x1ff) + 20;
    }
    fill(take);
    if (symbol > 2) {
      c_length[index++] = (u8)(symbol - 2);
      continue;
    }
    u32 end = index + zeros < NC ? index + zeros : NC;
    while (index < end) c_length[index++] = 0;
  }
  for (u32 i = index; i < NC; i++) c_length[i] = 0;
  return make_table(NC, c_length, c_table);
}

/* EDK2 Decode, one block's symbols; returns the new position, or -1 on a corrupt stream. */
NOINLINE static i64 decode_symbols(u8 *output, u32 size, u32 position, u32 symbols) {
  u32 buffer = bit_buffer;
  u32 byte = pending_byte;
  u32 bits = pending_bits;
  u32 at = input_position;
  i64 fetched = fetched_bytes;
  const u8 *bytes = input;
  u32 length = input_length;
  u32 remaining = symbols;
/* FillBuf over the locals: the hot loop keeps the reader in registers. */
#define TAKE(n)                                         \
  do {                                                  \
    u32 count_ = (n);                                   \
    buffer <<= count_;                                  \
    while (count_ > bits) {                             \
      count_ -= bits;                                   \
      buffer |= byte << count_;                         \
      byte = at < length ? bytes[at++] : 0;             \
      fetched++;                                        \
      bits = 8;                                         \
    }                                                   \
    bits -= count_;                                     \
    buffer |= byte >> bits;                             \
  } while (0)
  while (remaining > 0 && position < size) {
    remaining--;
    u32 entry = c_table[buffer >> (32 - MAX_CODE_LENGTH)];
    u32 symbol = entry & SYMBOL_MASK;
    if (symbol >= NC) return -1;
    TAKE(entry >> LENGTH_SHIFT);
    if (symbol < 256) {
      output[position++] = (u8)symbol;
      continue;
    }
    u32 match_length = symbol - (256 - THRESHOLD);
    entry = pt_table[buffer >> (32 - MAX_CODE_LENGTH)];
    u32 slot = entry & SYMBOL_MASK;
    if (slot >= MAXNP) return -1;
    TAKE(entry >> LENGTH_SHIFT);
    /* Symbol n > 1 stands for a distance with n - 1 more bits after an implicit leading 1. */
    u32 distance = slot;
    if (slot > 1) {
      u32 extra = slot - 1;
      distance = (1u << extra) + (buffer >> (32 - extra));
      TAKE(extra);
    }
    if ((i64)distance + 1 > (i64)position) return -1;
    u32 from = position - distance - 1;
    u32 end = size - position < match_length ? size : position + match_length;
    if (end - position <= position - from) {
      __builtin_memcpy(output + position, output + from, end - position);
      position = end;
    } else {
      /* Distance below length repeats the pattern: byte by byte, in order. */
      while (position < end) output[position++] = output[from++];
    }
  }
#undef TAKE
  bit_buffer = buffer;
  pending_byte = byte;
  pending_bits = bits;
  input_position = at;
  fetched_bytes = fetched;
  return position;
}

/*
 * Decodes `in_len` compressed bytes (the stream after the 8-byte header) into exactly `out_len`
 * bytes. variant 0 is EFI 1.1 (4-bit P count), 1 is Tiano (5-bit). Returns 0 on success.
 */
__attribute__((export_name("decode"))) int decode(const u8 *in, u32 in_len, u8 *out, u32 out_len,
                                                 u32 variant) {
  input = in;
  input_length = in_len;
  input_position = 0;
  fetched_bytes = 0;
  bit_buffer = 0;
  pending_byte = 0;
  pending_bits = 0;
  consumed = 0;
  if (out_len == 0) return OK;
  u32 p_count_bits = variant == 0 ? 4 : 5;
  fill(16);
  fill(16);
  u32 position = 0;
  while (position < out_len) {
    if (overread()) return FAILED;
    u32 symbols = get_bits(16);
    if (symbols == 0) symbols = 0x10000;
    if (read_pt_lengths(NT, TBIT, 3) != OK) return FAILED;
    if (read_c_lengths() != OK) return FAILED;
    if (read_pt_lengths(MAXNP, p_count_bits, (u32)-1) != OK) return FAILED;
    if (overread()) return FAILED;
    i64 next = decode_symbols(out, out_len, position, symbols);
    if (next < 0) return FAILED;
    position = (u32)next;
  }
  if (overread()) return FAILED;
  consumed = (double)used_bits();
  return OK;
}
