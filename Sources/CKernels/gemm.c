// Packed single-precision GEMM for convolutions (see include/CKernels.h).
//
// Design (after BLIS's five loops around a register-blocked micro-kernel):
//   for each block of NC columns of B and C
//     for each block of KC rows of B (KC columns of A)
//       pack that KC×NC block of B into column panels of NR floats (k-major), zero-padded;
//       for each block of MC rows of C
//         for each NR-column panel of the packed B     (the B panel stays in L1)
//           for each MR-row panel of the packed A      (the MC×KC block of A stays in L2)
//             micro-kernel: an MR×NR tile of C held in vector registers, one broadcast of
//             A and an FMA per row and vector of B for each of KC steps.
// A is packed once per weight (by the runtime, when it builds the kernel): panels of MR rows,
// k-major, so the micro-kernel reads both operands sequentially. The first KC block starts the
// tile from the bias (or zero), later blocks from C; the last applies the activation before the
// tile is stored. Columns past n in an edge panel are computed on zero padding in a scratch tile
// and not stored; rows past m use a shorter instantiation of the micro-kernel.
#include "CKernels.h"

#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>

#ifndef RB_KC
#define RB_KC 256
#endif
#ifndef RB_NC
#define RB_NC 512
#endif
#ifndef RB_MC
#define RB_MC 240  // a multiple of both MRs (12, 6)
#endif

// The row loops of a tile run over a constant count: fully unrolled, the accumulators live in registers.
#if defined(__clang__)
#define RB_UNROLL _Pragma("unroll")
#else
#define RB_UNROLL _Pragma("GCC unroll 16")
#endif
#define RB_INLINE static inline __attribute__((always_inline))
#define RB_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#define RB_AVX2 __attribute__((target("avx2,fma")))

typedef void (*rb_tile_fn)(
  int mr, ptrdiff_t kc, const float *a, const float *b, float *c, ptrdiff_t ldc, int load_c, const float *bias,
  int act, float lo, float hi);
typedef void (*rb_pack_b_fn)(ptrdiff_t kc, ptrdiff_t nc, const float *b, ptrdiff_t ldb, float *packed);

// Where the loops get each KC×NC block of B, packed: a row-major matrix, or a convolution's input.
typedef struct {
  rb_pack_b_fn pack_matrix;  // the isa's packer of a row-major block
  const float *b;
  ptrdiff_t ldb;
  const rb_conv2d_input *conv;  // non-NULL: im2col of this input instead
} rb_source;

// MARK: AVX-512: 12×32 tiles (24 zmm accumulators, two vectors of B, one broadcast)

RB_INLINE RB_AVX512 void tile512(
  const int mr, ptrdiff_t kc, const float *restrict a, const float *restrict b, float *restrict c, ptrdiff_t ldc,
  int load_c, const float *bias, int act, float lo, float hi) {
  __m512 c0[12], c1[12];
  RB_UNROLL for (int i = 0; i < mr; i++) {
    if (load_c) {
      c0[i] = _mm512_loadu_ps(c + i * ldc);
      c1[i] = _mm512_loadu_ps(c + i * ldc + 16);
    } else if (bias) {
      c0[i] = c1[i] = _mm512_set1_ps(bias[i]);
    } else {
      c0[i] = c1[i] = _mm512_setzero_ps();
    }
  }
  for (ptrdiff_t p = 0; p < kc; p++) {
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = _mm512_loadu_ps(b + 16);
    RB_UNROLL for (int i = 0; i < mr; i++) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
    }
    a += 12;
    b += 32;
  }
  if (act == RB_ACT_RELU) {
    const __m512 zero = _mm512_setzero_ps();
    RB_UNROLL for (int i = 0; i < mr; i++) {
      // max(y, 0) returns its second operand when y is NaN: y > 0 ? y : 0.
      c0[i] = _mm512_max_ps(c0[i], zero);
      c1[i] = _mm512_max_ps(c1[i], zero);
    }
  } else if (act == RB_ACT_CLIP) {
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    RB_UNROLL for (int i = 0; i < mr; i++) {
      // lo > y ? lo : y, then hi < v ? hi : v: a NaN passes through, as in the Clip kernel.
      c0[i] = _mm512_min_ps(vhi, _mm512_max_ps(vlo, c0[i]));
      c1[i] = _mm512_min_ps(vhi, _mm512_max_ps(vlo, c1[i]));
    }
  }
  RB_UNROLL for (int i = 0; i < mr; i++) {
    _mm512_storeu_ps(c + i * ldc, c0[i]);
    _mm512_storeu_ps(c + i * ldc + 16, c1[i]);
  }
}

#define RB_TILE_CASE(fn, r) \
  case r: fn(r, kc, a, b, c, ldc, load_c, bias, act, lo, hi); break;

static RB_AVX512 void tile512_any(
  int mr, ptrdiff_t kc, const float *a, const float *b, float *c, ptrdiff_t ldc, int load_c, const float *bias,
  int act, float lo, float hi) {
  switch (mr) {
    RB_TILE_CASE(tile512, 1) RB_TILE_CASE(tile512, 2) RB_TILE_CASE(tile512, 3) RB_TILE_CASE(tile512, 4)
    RB_TILE_CASE(tile512, 5) RB_TILE_CASE(tile512, 6) RB_TILE_CASE(tile512, 7) RB_TILE_CASE(tile512, 8)
    RB_TILE_CASE(tile512, 9) RB_TILE_CASE(tile512, 10) RB_TILE_CASE(tile512, 11)
    default: tile512(12, kc, a, b, c, ldc, load_c, bias, act, lo, hi); break;
  }
}

static RB_AVX512 void pack_b512(ptrdiff_t kc, ptrdiff_t nc, const float *b, ptrdiff_t ldb, float *packed) {
  for (ptrdiff_t j = 0; j < nc; j += 32) {
    const ptrdiff_t w = nc - j < 32 ? nc - j : 32;
    const float *src = b + j;
    if (w == 32) {
      for (ptrdiff_t p = 0; p < kc; p++) {
        _mm512_storeu_ps(packed, _mm512_loadu_ps(src));
        _mm512_storeu_ps(packed + 16, _mm512_loadu_ps(src + 16));
        src += ldb;
        packed += 32;
      }
    } else {
      const __mmask16 m0 = (__mmask16)(w >= 16 ? 0xFFFF : (1u << w) - 1);
      const __mmask16 m1 = (__mmask16)(w <= 16 ? 0 : (1u << (w - 16)) - 1);
      for (ptrdiff_t p = 0; p < kc; p++) {
        _mm512_storeu_ps(packed, _mm512_maskz_loadu_ps(m0, src));
        _mm512_storeu_ps(packed + 16, _mm512_maskz_loadu_ps(m1, src + 16));
        src += ldb;
        packed += 32;
      }
    }
  }
}

// MARK: AVX2 + FMA: 6×16 tiles (12 ymm accumulators, two vectors of B, one broadcast)

RB_INLINE RB_AVX2 void tile256(
  const int mr, ptrdiff_t kc, const float *restrict a, const float *restrict b, float *restrict c, ptrdiff_t ldc,
  int load_c, const float *bias, int act, float lo, float hi) {
  __m256 c0[6], c1[6];
  RB_UNROLL for (int i = 0; i < mr; i++) {
    if (load_c) {
      c0[i] = _mm256_loadu_ps(c + i * ldc);
      c1[i] = _mm256_loadu_ps(c + i * ldc + 8);
    } else if (bias) {
      c0[i] = c1[i] = _mm256_set1_ps(bias[i]);
    } else {
      c0[i] = c1[i] = _mm256_setzero_ps();
    }
  }
  for (ptrdiff_t p = 0; p < kc; p++) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
    RB_UNROLL for (int i = 0; i < mr; i++) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
    }
    a += 6;
    b += 16;
  }
  if (act == RB_ACT_RELU) {
    const __m256 zero = _mm256_setzero_ps();
    RB_UNROLL for (int i = 0; i < mr; i++) {
      c0[i] = _mm256_max_ps(c0[i], zero);
      c1[i] = _mm256_max_ps(c1[i], zero);
    }
  } else if (act == RB_ACT_CLIP) {
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    RB_UNROLL for (int i = 0; i < mr; i++) {
      c0[i] = _mm256_min_ps(vhi, _mm256_max_ps(vlo, c0[i]));
      c1[i] = _mm256_min_ps(vhi, _mm256_max_ps(vlo, c1[i]));
    }
  }
  RB_UNROLL for (int i = 0; i < mr; i++) {
    _mm256_storeu_ps(c + i * ldc, c0[i]);
    _mm256_storeu_ps(c + i * ldc + 8, c1[i]);
  }
}

static RB_AVX2 void tile256_any(
  int mr, ptrdiff_t kc, const float *a, const float *b, float *c, ptrdiff_t ldc, int load_c, const float *bias,
  int act, float lo, float hi) {
  switch (mr) {
    RB_TILE_CASE(tile256, 1) RB_TILE_CASE(tile256, 2) RB_TILE_CASE(tile256, 3) RB_TILE_CASE(tile256, 4)
    RB_TILE_CASE(tile256, 5)
    default: tile256(6, kc, a, b, c, ldc, load_c, bias, act, lo, hi); break;
  }
}

static RB_AVX2 void pack_b256(ptrdiff_t kc, ptrdiff_t nc, const float *b, ptrdiff_t ldb, float *packed) {
  for (ptrdiff_t j = 0; j < nc; j += 16) {
    const ptrdiff_t w = nc - j < 16 ? nc - j : 16;
    const float *src = b + j;
    if (w == 16) {
      for (ptrdiff_t p = 0; p < kc; p++) {
        _mm256_storeu_ps(packed, _mm256_loadu_ps(src));
        _mm256_storeu_ps(packed + 8, _mm256_loadu_ps(src + 8));
        src += ldb;
        packed += 16;
      }
    } else {
      for (ptrdiff_t p = 0; p < kc; p++) {
        ptrdiff_t q = 0;
        for (; q < w; q++) packed[q] = src[q];
        for (; q < 16; q++) packed[q] = 0;
        src += ldb;
        packed += 16;
      }
    }
  }
}

// MARK: Dispatch and the loops around the micro-kernel

int rb_gemm_isa(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")
      && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
    return RB_GEMM_AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return RB_GEMM_AVX2;
  return RB_GEMM_NONE;
}

int rb_gemm_mr(int isa) { return isa == RB_GEMM_AVX512 ? 12 : 6; }
int rb_gemm_nr(int isa) { return isa == RB_GEMM_AVX512 ? 32 : 16; }

size_t rb_gemm_packed_a_count(int isa, ptrdiff_t m, ptrdiff_t k) {
  const ptrdiff_t mr = rb_gemm_mr(isa);
  return (size_t)((m + mr - 1) / mr * mr * k);
}

size_t rb_gemm_workspace_count(int isa) {
  return (size_t)(RB_KC * RB_NC + rb_gemm_mr(isa) * rb_gemm_nr(isa));
}

void rb_gemm_pack_a(int isa, ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, float *packed) {
  const ptrdiff_t mr = rb_gemm_mr(isa);
  for (ptrdiff_t i0 = 0; i0 < m; i0 += mr) {
    for (ptrdiff_t p = 0; p < k; p++) {
      for (ptrdiff_t i = 0; i < mr; i++) *packed++ = i0 + i < m ? a[(i0 + i) * lda + p] : 0.0f;
    }
  }
}

// MARK: Packing a convolution's input
//
// `pack_conv2d_512`/`_256` pack columns [jc, jc + nc) of rows [pc, pc + kc) of the im2col matrix
// of `g` into panels of NR columns (k-major, zero-padded), as `pack_b512`/`pack_b256` do for a
// stored matrix. A panel's columns are a few runs along output rows (`rb_conv_run`); row p of the
// block is tap (i, j) of channel ch, p + pc = (ch·k_h + i)·k_w + j. The loops go tap by tap, run
// by run, 16 (8) columns at a time, and innermost over the channels: every channel of a tap reads
// the same columns, so the lanes in the padding (masked off, read as zero: copies and zeros are
// one masked load) are worked out once per tap and chunk, and the channel loop is a load and a
// store. Stride 2 loads two vectors and keeps the even lanes; larger strides gather.

// A run of a panel: output columns [ow, ow + len) of output row oh, at panel column `filled`.
typedef struct {
  ptrdiff_t filled, oh, ow, len;
} rb_conv_run;

// The runs of the w columns starting at column `col` of the im2col matrix; returns their count.
static int conv_runs(const rb_conv2d_input *g, ptrdiff_t col, ptrdiff_t w, rb_conv_run *runs) {
  int count = 0;
  ptrdiff_t filled = 0, oh = col / g->out_w, ow = col % g->out_w;
  while (filled < w) {
    const ptrdiff_t len = g->out_w - ow < w - filled ? g->out_w - ow : w - filled;
    runs[count++] = (rb_conv_run){filled, oh, ow, len};
    filled += len;
    ow = 0;
    oh++;
  }
  return count;
}

// Tap `t` (i, j) of a block starting at row pc: its first row p0 in the block and that row's
// channel, the input row and column it reads for output (0, 0), and the output columns [lo, hi)
// whose input column ow·stride_w + off_w is inside the input row.
typedef struct {
  ptrdiff_t p0, ch0, off_h, off_w, lo, hi;
} rb_conv_tap;

static rb_conv_tap conv_tap(const rb_conv2d_input *g, ptrdiff_t pc, ptrdiff_t t) {
  const ptrdiff_t taps = g->k_h * g->k_w, sw = g->stride_w, out_w = g->out_w, in_w = g->in_w;
  rb_conv_tap r;
  r.p0 = ((t - pc % taps) % taps + taps) % taps;
  r.ch0 = (pc + r.p0) / taps;
  r.off_h = t / g->k_w * g->dilation_h - g->pad_h;
  r.off_w = t % g->k_w * g->dilation_w - g->pad_w;
  r.lo = r.off_w >= 0 ? 0 : (-r.off_w + sw - 1) / sw;
  r.hi = in_w - r.off_w <= 0 ? 0 : (in_w - r.off_w + sw - 1) / sw;
  if (r.lo > out_w) r.lo = out_w;
  if (r.hi > out_w) r.hi = out_w;
  if (r.hi < r.lo) r.hi = r.lo;
  return r;
}

// The lanes of the chunk of a run starting at output column t0 (n lanes) that read inside the
// input row: [first, end) of 0..<n.
#define RB_CHUNK_LANES(a, b, t0, n, first, end) \
  ptrdiff_t first = (a) - (t0), end = (b) - (t0); \
  if (first < 0) first = 0; \
  if (end > (n)) end = (n); \
  if (end < first) end = first;

// Bits [lo, hi) of a 32-bit mask (0 <= lo, hi <= 32).
static inline unsigned rb_bits(ptrdiff_t lo, ptrdiff_t hi) {
  if (lo >= hi) return 0;
  const unsigned upper = hi >= 32 ? ~0u : (1u << hi) - 1;
  return upper & ~((1u << lo) - 1);
}

static RB_AVX512 void pack_conv2d_512(
  const rb_conv2d_input *g, ptrdiff_t pc, ptrdiff_t kc, ptrdiff_t jc, ptrdiff_t nc, float *packed) {
  enum { NR = 32 };
  const ptrdiff_t taps = g->k_h * g->k_w, sw = g->stride_w, sh = g->stride_h, in_h = g->in_h, in_w = g->in_w;
  const ptrdiff_t plane = in_h * in_w, row_step = taps * NR;
  const __m512 zero = _mm512_setzero_ps();
  const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i strided = _mm512_mullo_epi32(
    _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32((int)sw));
  rb_conv_run runs[NR];
  for (ptrdiff_t q0 = 0; q0 < nc; q0 += NR) {
    const ptrdiff_t w = nc - q0 < NR ? nc - q0 : NR;
    const int count = conv_runs(g, jc + q0, w, runs);
    float *panel = packed + q0 * kc;
    if (w < NR)
      for (ptrdiff_t p = 0; p < kc; p++) {
        _mm512_storeu_ps(panel + p * NR, zero);
        _mm512_storeu_ps(panel + p * NR + 16, zero);
      }
    for (ptrdiff_t t = 0; t < taps; t++) {
      const rb_conv_tap tap = conv_tap(g, pc, t);
      if (tap.p0 >= kc) continue;
      const ptrdiff_t rows = (kc - tap.p0 + taps - 1) / taps;  // channels of this tap in the block
      for (int u = 0; u < count; u++) {
        const rb_conv_run run = runs[u];
        const ptrdiff_t ih = run.oh * sh + tap.off_h;
        const int inside = ih >= 0 && ih < in_h;
        for (ptrdiff_t c = 0; c < run.len; c += 16) {
          const ptrdiff_t n = run.len - c < 16 ? run.len - c : 16, t0 = run.ow + c;
          RB_CHUNK_LANES(tap.lo, tap.hi, t0, n, first, end)
          const __mmask16 valid = (__mmask16)(inside ? rb_bits(first, end) : 0);
          const __mmask16 store = (__mmask16)rb_bits(0, n);
          float *dst = panel + tap.p0 * NR + run.filled + c;
          if (!valid) {
            for (ptrdiff_t q = 0; q < rows; q++, dst += row_step) _mm512_mask_storeu_ps(dst, store, zero);
            continue;
          }
          // src[l·sw] is the input under lane l, channel ch0; the next channel is a plane on.
          const float *src = g->x + tap.ch0 * plane + ih * in_w + tap.off_w + t0 * sw;
          if (sw == 1) {
            for (ptrdiff_t q = 0; q < rows; q++, dst += row_step, src += plane)
              _mm512_mask_storeu_ps(dst, store, _mm512_maskz_loadu_ps(valid, src));
          } else if (sw == 2) {
            // Lanes [2·first, 2·end − 1) of the 32 floats from src; the even ones.
            const unsigned m = rb_bits(2 * first, 2 * end - 1);
            const __mmask16 m0 = (__mmask16)(m & 0xFFFF), m1 = (__mmask16)(m >> 16);
            for (ptrdiff_t q = 0; q < rows; q++, dst += row_step, src += plane) {
              const __m512 v = _mm512_permutex2var_ps(
                _mm512_maskz_loadu_ps(m0, src), evens, _mm512_maskz_loadu_ps(m1, src + 16));
              _mm512_mask_storeu_ps(dst, store, v);
            }
          } else {
            for (ptrdiff_t q = 0; q < rows; q++, dst += row_step, src += plane)
              _mm512_mask_storeu_ps(dst, store, _mm512_mask_i32gather_ps(zero, valid, strided, src, 4));
          }
        }
      }
    }
  }
}

static RB_AVX2 void pack_conv2d_256(
  const rb_conv2d_input *g, ptrdiff_t pc, ptrdiff_t kc, ptrdiff_t jc, ptrdiff_t nc, float *packed) {
  enum { NR = 16 };
  const ptrdiff_t taps = g->k_h * g->k_w, sw = g->stride_w, sh = g->stride_h, in_h = g->in_h, in_w = g->in_w;
  const ptrdiff_t plane = in_h * in_w, row_step = taps * NR;
  const __m256 zero = _mm256_setzero_ps();
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i strided = _mm256_mullo_epi32(lane, _mm256_set1_epi32((int)sw));
  rb_conv_run runs[NR];
  for (ptrdiff_t q0 = 0; q0 < nc; q0 += NR) {
    const ptrdiff_t w = nc - q0 < NR ? nc - q0 : NR;
    const int count = conv_runs(g, jc + q0, w, runs);
    float *panel = packed + q0 * kc;
    if (w < NR)
      for (ptrdiff_t p = 0; p < kc; p++) {
        _mm256_storeu_ps(panel + p * NR, zero);
        _mm256_storeu_ps(panel + p * NR + 8, zero);
      }
    for (ptrdiff_t t = 0; t < taps; t++) {
      const rb_conv_tap tap = conv_tap(g, pc, t);
      if (tap.p0 >= kc) continue;
      const ptrdiff_t rows = (kc - tap.p0 + taps - 1) / taps;
      for (int u = 0; u < count; u++) {
        const rb_conv_run run = runs[u];
        const ptrdiff_t ih = run.oh * sh + tap.off_h;
        const int inside = ih >= 0 && ih < in_h;
        for (ptrdiff_t c = 0; c < run.len; c += 8) {
          const ptrdiff_t n = run.len - c < 8 ? run.len - c : 8, t0 = run.ow + c;
          RB_CHUNK_LANES(tap.lo, tap.hi, t0, n, first, end)
          if (!inside) end = first;
          // Lanes first <= l < end: l > first − 1 and end > l; stored: n > l.
          const __m256i valid = _mm256_and_si256(
            _mm256_cmpgt_epi32(lane, _mm256_set1_epi32((int)first - 1)),
            _mm256_cmpgt_epi32(_mm256_set1_epi32((int)end), lane));
          const __m256i store = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), lane);
          float *dst = panel + tap.p0 * NR + run.filled + c;
          if (first == end) {
            for (ptrdiff_t q = 0; q < rows; q++, dst += row_step) _mm256_maskstore_ps(dst, store, zero);
            continue;
          }
          const float *src = g->x + tap.ch0 * plane + ih * in_w + tap.off_w + t0 * sw;
          for (ptrdiff_t q = 0; q < rows; q++, dst += row_step, src += plane) {
            const __m256 v = sw == 1 ? _mm256_maskload_ps(src, valid)
                                     : _mm256_mask_i32gather_ps(zero, src, strided, _mm256_castsi256_ps(valid), 4);
            _mm256_maskstore_ps(dst, store, v);
          }
        }
      }
    }
  }
}

static void run_loops(
  int isa, ptrdiff_t m, ptrdiff_t k, const float *packed_a, const rb_source *source, float *c, ptrdiff_t ldc,
  const float *bias, int activation, float lo, float hi, ptrdiff_t row_begin, ptrdiff_t row_end,
  ptrdiff_t col_begin, ptrdiff_t col_end, float *workspace) {
  const rb_tile_fn tile = isa == RB_GEMM_AVX512 ? tile512_any : tile256_any;
  const ptrdiff_t MR = rb_gemm_mr(isa), NR = rb_gemm_nr(isa);
  float *packed_b = workspace;
  float *edge = workspace + RB_KC * RB_NC;  // MR×NR tile for columns past the end
  if (row_end > m) row_end = m;
  if (k == 0) {
    // No products: C = act(bias).
    for (ptrdiff_t i = row_begin; i < row_end; i++) {
      for (ptrdiff_t j = col_begin; j < col_end; j++) {
        float y = bias ? bias[i] : 0.0f;
        if (activation == RB_ACT_RELU) y = y > 0 ? y : 0;
        if (activation == RB_ACT_CLIP) {
          y = lo > y ? lo : y;
          y = hi < y ? hi : y;
        }
        c[i * ldc + j] = y;
      }
    }
    return;
  }
  for (ptrdiff_t jc = col_begin; jc < col_end; jc += RB_NC) {
    const ptrdiff_t nc = col_end - jc < RB_NC ? col_end - jc : RB_NC;
    for (ptrdiff_t pc = 0; pc < k; pc += RB_KC) {
      const ptrdiff_t kc = k - pc < RB_KC ? k - pc : RB_KC;
      const int first = pc == 0, last = pc + kc == k;
      const int act = last ? activation : RB_ACT_NONE;
      if (source->conv && isa == RB_GEMM_AVX512)
        pack_conv2d_512(source->conv, pc, kc, jc, nc, packed_b);
      else if (source->conv)
        pack_conv2d_256(source->conv, pc, kc, jc, nc, packed_b);
      else
        source->pack_matrix(kc, nc, source->b + pc * source->ldb + jc, source->ldb, packed_b);
      for (ptrdiff_t ic = row_begin; ic < row_end; ic += RB_MC) {
        const ptrdiff_t ic_end = row_end - ic < RB_MC ? row_end : ic + RB_MC;
        for (ptrdiff_t jr = 0; jr < nc; jr += NR) {
          const ptrdiff_t nr = nc - jr < NR ? nc - jr : NR;
          const float *bp = packed_b + jr * kc;  // panel jr/NR of kc×NR floats
          for (ptrdiff_t ir = ic; ir < ic_end; ir += MR) {
            const int mr = (int)(ic_end - ir < MR ? ic_end - ir : MR);
            const float *ap = packed_a + ir * k + pc * MR;  // panel ir/MR, column pc
            const float *bias_rows = first && bias ? bias + ir : NULL;
            float *ct = c + ir * ldc + jc + jr;
            if (nr == NR) {
              tile(mr, kc, ap, bp, ct, ldc, !first, bias_rows, act, lo, hi);
            } else {
              if (!first)
                for (int i = 0; i < mr; i++) memcpy(edge + i * NR, ct + i * ldc, (size_t)nr * sizeof(float));
              tile(mr, kc, ap, bp, edge, NR, !first, bias_rows, act, lo, hi);
              for (int i = 0; i < mr; i++) memcpy(ct + i * ldc, edge + i * NR, (size_t)nr * sizeof(float));
            }
          }
        }
      }
    }
  }
}

void rb_gemm_run(
  int isa, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *packed_a, const float *b, ptrdiff_t ldb, float *c,
  ptrdiff_t ldc, const float *bias, int activation, float lo, float hi, ptrdiff_t row_begin, ptrdiff_t row_end,
  ptrdiff_t col_begin, ptrdiff_t col_end, float *workspace) {
  (void)n;
  if (isa != RB_GEMM_AVX512 && isa != RB_GEMM_AVX2) return;
  const rb_source source = {isa == RB_GEMM_AVX512 ? pack_b512 : pack_b256, b, ldb, NULL};
  run_loops(
    isa, m, k, packed_a, &source, c, ldc, bias, activation, lo, hi, row_begin, row_end, col_begin, col_end,
    workspace);
}

void rb_gemm_run_conv2d(
  int isa, ptrdiff_t m, ptrdiff_t k, const float *packed_a, const rb_conv2d_input *input, float *c, ptrdiff_t ldc,
  const float *bias, int activation, float lo, float hi, ptrdiff_t row_begin, ptrdiff_t row_end,
  ptrdiff_t col_begin, ptrdiff_t col_end, float *workspace) {
  if (isa != RB_GEMM_AVX512 && isa != RB_GEMM_AVX2) return;
  const rb_source source = {NULL, NULL, 0, input};
  run_loops(
    isa, m, k, packed_a, &source, c, ldc, bias, activation, lo, hi, row_begin, row_end, col_begin, col_end,
    workspace);
}

#else  // not x86-64: no kernels; the runtime keeps to BLAS.

int rb_gemm_isa(void) { return RB_GEMM_NONE; }
int rb_gemm_mr(int isa) { (void)isa; return 1; }
int rb_gemm_nr(int isa) { (void)isa; return 1; }
size_t rb_gemm_packed_a_count(int isa, ptrdiff_t m, ptrdiff_t k) { (void)isa; return (size_t)(m * k); }
size_t rb_gemm_workspace_count(int isa) { (void)isa; return 1; }
void rb_gemm_pack_a(int isa, ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, float *packed) {
  (void)isa; (void)m; (void)k; (void)a; (void)lda; (void)packed;
}
void rb_gemm_run_conv2d(
  int isa, ptrdiff_t m, ptrdiff_t k, const float *packed_a, const rb_conv2d_input *input, float *c, ptrdiff_t ldc,
  const float *bias, int activation, float lo, float hi, ptrdiff_t row_begin, ptrdiff_t row_end,
  ptrdiff_t col_begin, ptrdiff_t col_end, float *workspace) {
  (void)isa; (void)m; (void)k; (void)packed_a; (void)input; (void)c; (void)ldc; (void)bias; (void)activation;
  (void)lo; (void)hi; (void)row_begin; (void)row_end; (void)col_begin; (void)col_end; (void)workspace;
}
void rb_gemm_run(
  int isa, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *packed_a, const float *b, ptrdiff_t ldb, float *c,
  ptrdiff_t ldc, const float *bias, int activation, float lo, float hi, ptrdiff_t row_begin, ptrdiff_t row_end,
  ptrdiff_t col_begin, ptrdiff_t col_end, float *workspace) {
  (void)isa; (void)m; (void)n; (void)k; (void)packed_a; (void)b; (void)ldb; (void)c; (void)ldc; (void)bias;
  (void)activation; (void)lo; (void)hi; (void)row_begin; (void)row_end; (void)col_begin; (void)col_end;
  (void)workspace;
}

#endif
