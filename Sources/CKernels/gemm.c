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
// stored matrix. A panel's columns are a few runs along output rows (`rb_conv_run`, the same for
// every row of the block); a row of the block is one tap (channel, i, j) of the kernel
// (`rb_conv_row`). Each run of each row is one masked vector load per 16 (8) output columns: lanes
// whose input column or row falls in the padding are masked off and read as zero, so copies and
// zeros are one instruction; stride 2 loads two vectors and keeps the even lanes, larger strides
// gather.

// Row p of the block: tap (ch, i, j) of the kernel.
typedef struct {
  ptrdiff_t plane;         // offset of channel ch's plane in x
  ptrdiff_t off_h, off_w;  // input row and column the tap reads for output (0, 0)
  ptrdiff_t lo, hi;        // output columns whose input column ow·stride_w + off_w is inside the row
} rb_conv_row;

// A run of a panel: output columns [ow, ow + len) of output row oh, at panel column `filled`.
typedef struct {
  ptrdiff_t filled, oh, ow, len;
} rb_conv_run;

static void conv_rows(const rb_conv2d_input *g, ptrdiff_t pc, ptrdiff_t kc, rb_conv_row *rows) {
  const ptrdiff_t taps = g->k_h * g->k_w, sw = g->stride_w, out_w = g->out_w, in_w = g->in_w;
  ptrdiff_t ch = pc / taps, i = pc % taps / g->k_w, j = pc % g->k_w;
  for (ptrdiff_t p = 0; p < kc; p++) {
    const ptrdiff_t off_w = j * g->dilation_w - g->pad_w;
    ptrdiff_t lo = off_w >= 0 ? 0 : (-off_w + sw - 1) / sw;
    ptrdiff_t hi = in_w - off_w <= 0 ? 0 : (in_w - off_w + sw - 1) / sw;
    if (lo > out_w) lo = out_w;
    if (hi > out_w) hi = out_w;
    if (hi < lo) hi = lo;
    rows[p] = (rb_conv_row){ch * g->in_h * in_w, i * g->dilation_h - g->pad_h, off_w, lo, hi};
    if (++j == g->k_w) {
      j = 0;
      if (++i == g->k_h) {
        i = 0;
        ch++;
      }
    }
  }
}

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

// The lanes of the chunk of a run starting at output column t0 (n lanes) that read inside the
// input: [first, end) of 0..<n.
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
  const rb_conv2d_input *g, ptrdiff_t pc, ptrdiff_t kc, ptrdiff_t jc, ptrdiff_t nc, float *packed,
  rb_conv_row *rows) {
  enum { NR = 32 };
  conv_rows(g, pc, kc, rows);
  const ptrdiff_t sw = g->stride_w, sh = g->stride_h, in_h = g->in_h, in_w = g->in_w;
  const __m512 zero = _mm512_setzero_ps();
  const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i strided = _mm512_mullo_epi32(
    _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32((int)sw));
  rb_conv_run runs[NR];
  for (ptrdiff_t q0 = 0; q0 < nc; q0 += NR) {
    const ptrdiff_t w = nc - q0 < NR ? nc - q0 : NR;
    const int count = conv_runs(g, jc + q0, w, runs);
    float *dst = packed + q0 * kc;
    for (ptrdiff_t p = 0; p < kc; p++, dst += NR) {
      const rb_conv_row r = rows[p];
      if (w < NR) {
        _mm512_storeu_ps(dst, zero);
        _mm512_storeu_ps(dst + 16, zero);
      }
      for (int u = 0; u < count; u++) {
        const rb_conv_run run = runs[u];
        const ptrdiff_t ih = run.oh * sh + r.off_h;
        const int inside = ih >= 0 && ih < in_h;
        // src[t·sw] is the input under output column t of this run's row.
        const float *src = inside ? g->x + r.plane + ih * in_w + r.off_w : g->x;
        for (ptrdiff_t c = 0; c < run.len; c += 16) {
          const ptrdiff_t n = run.len - c < 16 ? run.len - c : 16, t0 = run.ow + c;
          RB_CHUNK_LANES(r.lo, r.hi, t0, n, first, end)
          const __mmask16 valid = (__mmask16)(inside ? rb_bits(first, end) : 0);
          __m512 v = zero;
          if (valid) {
            if (sw == 1) {
              v = _mm512_maskz_loadu_ps(valid, src + t0);
            } else if (sw == 2) {
              // Lanes [2·first, 2·end − 1) of the 32 floats from src + 2·t0; the even ones.
              const unsigned m = rb_bits(2 * first, 2 * end - 1);
              const __m512 even = _mm512_maskz_loadu_ps((__mmask16)(m & 0xFFFF), src + 2 * t0);
              const __m512 odd = _mm512_maskz_loadu_ps((__mmask16)(m >> 16), src + 2 * t0 + 16);
              v = _mm512_permutex2var_ps(even, evens, odd);
            } else {
              v = _mm512_mask_i32gather_ps(zero, valid, strided, src + t0 * sw, 4);
            }
          }
          _mm512_mask_storeu_ps(dst + run.filled + c, (__mmask16)rb_bits(0, n), v);
        }
      }
    }
  }
}

static RB_AVX2 void pack_conv2d_256(
  const rb_conv2d_input *g, ptrdiff_t pc, ptrdiff_t kc, ptrdiff_t jc, ptrdiff_t nc, float *packed,
  rb_conv_row *rows) {
  enum { NR = 16 };
  conv_rows(g, pc, kc, rows);
  const ptrdiff_t sw = g->stride_w, sh = g->stride_h, in_h = g->in_h, in_w = g->in_w;
  const __m256 zero = _mm256_setzero_ps();
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i strided = _mm256_mullo_epi32(lane, _mm256_set1_epi32((int)sw));
  rb_conv_run runs[NR];
  for (ptrdiff_t q0 = 0; q0 < nc; q0 += NR) {
    const ptrdiff_t w = nc - q0 < NR ? nc - q0 : NR;
    const int count = conv_runs(g, jc + q0, w, runs);
    float *dst = packed + q0 * kc;
    for (ptrdiff_t p = 0; p < kc; p++, dst += NR) {
      const rb_conv_row r = rows[p];
      if (w < NR) {
        _mm256_storeu_ps(dst, zero);
        _mm256_storeu_ps(dst + 8, zero);
      }
      for (int u = 0; u < count; u++) {
        const rb_conv_run run = runs[u];
        const ptrdiff_t ih = run.oh * sh + r.off_h;
        const int inside = ih >= 0 && ih < in_h;
        const float *src = inside ? g->x + r.plane + ih * in_w + r.off_w : g->x;
        for (ptrdiff_t c = 0; c < run.len; c += 8) {
          const ptrdiff_t n = run.len - c < 8 ? run.len - c : 8, t0 = run.ow + c;
          RB_CHUNK_LANES(r.lo, r.hi, t0, n, first, end)
          if (!inside) end = first;
          // Lanes first <= l < end: l > first − 1 and end > l.
          const __m256i valid = _mm256_and_si256(
            _mm256_cmpgt_epi32(lane, _mm256_set1_epi32((int)first - 1)),
            _mm256_cmpgt_epi32(_mm256_set1_epi32((int)end), lane));
          __m256 v = zero;
          if (first < end) {
            if (sw == 1)
              v = _mm256_maskload_ps(src + t0, valid);
            else
              v = _mm256_mask_i32gather_ps(zero, src + t0 * sw, strided, _mm256_castsi256_ps(valid), 4);
          }
          if (n == 8)
            _mm256_storeu_ps(dst + run.filled + c, v);
          else
            _mm256_maskstore_ps(dst + run.filled + c, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), lane), v);
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
  rb_conv_row rows[RB_KC];                  // the taps of a block's rows (convolution input)
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
        pack_conv2d_512(source->conv, pc, kc, jc, nc, packed_b, rows);
      else if (source->conv)
        pack_conv2d_256(source->conv, pc, kc, jc, nc, packed_b, rows);
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
