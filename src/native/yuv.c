/* RGB -> I420 for the encoder (see yuv.h). */
#include "yuv.h"
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

/* The column filter: bicubic (B=0, C=0.6, swscale's default) halving the rows, taps at
   -3.5..+3.5 rows from the chroma row's centre; x640 they are whole numbers summing to 640. */
static const float TAPS[8] = {-9 / 640.f, -27 / 640.f, 77 / 640.f, 279 / 640.f, 279 / 640.f, 77 / 640.f, -27 / 640.f, -9 / 640.f};

void i420Matrix(I420Matrix *m, float kr, float kb, int full) {
  const float kg = 1.f - kr - kb;
  const float ys = full ? 1.f : 219.f / 255.f, cs = full ? 1.f : 224.f / 255.f;
  /* swscale's luma carries a bias of 1/128 of a level (its rounding constant), kept so the two agree. */
  const float yo = (full ? 0.f : 16.f) + 1.f / 128.f;
  /* Chroma is computed from pairs of pixels summed: half the coefficient. */
  const float su = cs / (2.f * (1.f - kb)) * 0.5f, sv = cs / (2.f * (1.f - kr)) * 0.5f;
  const float c[10] = {yo, kr * ys, kg * ys, kb * ys, -kr * su, -kg * su, (1.f - kb) * su, (1.f - kr) * sv, -kg * sv, -kb * sv};
  for (int i = 0; i < 10; i++) m->c[i] = c[i];
}

/* 16 floats -> 16 bytes, rounded half up; the packs saturate to 0..255. */
AVX2 static inline __m128i toBytes(__m256 a, __m256 b) {
  const __m256 half = _mm256_set1_ps(0.5f);
  __m256i w = _mm256_packus_epi32(_mm256_cvttps_epi32(_mm256_add_ps(a, half)), _mm256_cvttps_epi32(_mm256_add_ps(b, half)));
  w = _mm256_permute4x64_epi64(w, 0xD8);
  return _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
}

AVX2 static inline __m256 lo8(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }
AVX2 static inline __m256 hi8(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8))); }
static inline uint8_t level(float v) { v += 0.5f; return (uint8_t)(v < 0.f ? 0.f : v > 255.f ? 255.f : v); }

AVX2 void i420Row(const uint8_t *rgb, int w, const I420Matrix *m, uint8_t *y, float *u, float *v) {
  const float *c = m->c;
  /* Sixteen pixels (48 bytes, three 16-byte loads) split into their R, G and B bytes. */
  const __m128i r0 = _mm_setr_epi8(0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i r1 = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14, -1, -1, -1, -1, -1);
  const __m128i r2 = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 1, 4, 7, 10, 13);
  const __m128i g0 = _mm_setr_epi8(1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i g1 = _mm_setr_epi8(-1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1);
  const __m128i g2 = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14);
  const __m128i b0 = _mm_setr_epi8(2, 5, 8, 11, 14, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i b1 = _mm_setr_epi8(-1, -1, -1, -1, -1, 1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1);
  const __m128i b2 = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15);
  const __m128i ones = _mm_set1_epi8(1);
  const __m256 cy0 = _mm256_set1_ps(c[0]), cy1 = _mm256_set1_ps(c[1]), cy2 = _mm256_set1_ps(c[2]), cy3 = _mm256_set1_ps(c[3]);
  const __m256 cu4 = _mm256_set1_ps(c[4]), cu5 = _mm256_set1_ps(c[5]), cu6 = _mm256_set1_ps(c[6]);
  const __m256 cv7 = _mm256_set1_ps(c[7]), cv8 = _mm256_set1_ps(c[8]), cv9 = _mm256_set1_ps(c[9]);
  int x = 0;
  for (; x + 16 <= w; x += 16) {
    const uint8_t *p = rgb + 3 * x;
    const __m128i a = _mm_loadu_si128((const __m128i *)p), b = _mm_loadu_si128((const __m128i *)(p + 16)), d = _mm_loadu_si128((const __m128i *)(p + 32));
    const __m128i R = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(a, r0), _mm_shuffle_epi8(b, r1)), _mm_shuffle_epi8(d, r2));
    const __m128i G = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(a, g0), _mm_shuffle_epi8(b, g1)), _mm_shuffle_epi8(d, g2));
    const __m128i B = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(a, b0), _mm_shuffle_epi8(b, b1)), _mm_shuffle_epi8(d, b2));
    const __m256 ylo = _mm256_fmadd_ps(cy3, lo8(B), _mm256_fmadd_ps(cy2, lo8(G), _mm256_fmadd_ps(cy1, lo8(R), cy0)));
    const __m256 yhi = _mm256_fmadd_ps(cy3, hi8(B), _mm256_fmadd_ps(cy2, hi8(G), _mm256_fmadd_ps(cy1, hi8(R), cy0)));
    _mm_storeu_si128((__m128i *)(y + x), toBytes(ylo, yhi));
    /* Neighbours summed in pairs: 8 values of 0..510 per channel. */
    const __m256 rs = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm_maddubs_epi16(R, ones)));
    const __m256 gs = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm_maddubs_epi16(G, ones)));
    const __m256 bs = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm_maddubs_epi16(B, ones)));
    _mm256_storeu_ps(u + x / 2, _mm256_fmadd_ps(cu6, bs, _mm256_fmadd_ps(cu5, gs, _mm256_mul_ps(cu4, rs))));
    _mm256_storeu_ps(v + x / 2, _mm256_fmadd_ps(cv9, bs, _mm256_fmadd_ps(cv8, gs, _mm256_mul_ps(cv7, rs))));
  }
  for (; x < w; x += 2) {
    const uint8_t *p = rgb + 3 * x;
    y[x] = level(c[0] + c[1] * p[0] + c[2] * p[1] + c[3] * p[2]);
    y[x + 1] = level(c[0] + c[1] * p[3] + c[2] * p[4] + c[3] * p[5]);
    const float rs = (float)(p[0] + p[3]), gs = (float)(p[1] + p[4]), bs = (float)(p[2] + p[5]);
    u[x / 2] = c[4] * rs + c[5] * gs + c[6] * bs;
    v[x / 2] = c[7] * rs + c[8] * gs + c[9] * bs;
  }
}

/* One chroma row from its eight source rows. */
AVX2 static void column(const float *const *rows, int n, uint8_t *out) {
  const float *s0 = rows[0], *s1 = rows[1], *s2 = rows[2], *s3 = rows[3], *s4 = rows[4], *s5 = rows[5], *s6 = rows[6], *s7 = rows[7];
  const __m256 t0 = _mm256_set1_ps(TAPS[0]), t1 = _mm256_set1_ps(TAPS[1]), t2 = _mm256_set1_ps(TAPS[2]), t3 = _mm256_set1_ps(TAPS[3]);
  const __m256 mid = _mm256_set1_ps(128.f);
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 acc[2];
    for (int k = 0; k < 2; k++) {
      const int o = i + 8 * k;
      /* The taps are symmetric: the rows at equal distances are added first. */
      __m256 s = _mm256_fmadd_ps(t0, _mm256_add_ps(_mm256_loadu_ps(s0 + o), _mm256_loadu_ps(s7 + o)), mid);
      s = _mm256_fmadd_ps(t1, _mm256_add_ps(_mm256_loadu_ps(s1 + o), _mm256_loadu_ps(s6 + o)), s);
      s = _mm256_fmadd_ps(t2, _mm256_add_ps(_mm256_loadu_ps(s2 + o), _mm256_loadu_ps(s5 + o)), s);
      acc[k] = _mm256_fmadd_ps(t3, _mm256_add_ps(_mm256_loadu_ps(s3 + o), _mm256_loadu_ps(s4 + o)), s);
    }
    _mm_storeu_si128((__m128i *)(out + i), toBytes(acc[0], acc[1]));
  }
  for (; i < n; i++)
    out[i] = level(128.f + TAPS[0] * (s0[i] + s7[i]) + TAPS[1] * (s1[i] + s6[i]) + TAPS[2] * (s2[i] + s5[i]) + TAPS[3] * (s3[i] + s4[i]));
}

void i420Chroma(const float *u, const float *v, int cw, int h, int j0, int j1, uint8_t *U, uint8_t *V) {
  for (int j = j0; j < j1; j++) {
    const float *ru[8], *rv[8];
    for (int t = 0; t < 8; t++) {
      int k = 2 * j - 3 + t;
      k = k < 0 ? 0 : k >= h ? h - 1 : k;
      ru[t] = u + (size_t)k * cw, rv[t] = v + (size_t)k * cw;
    }
    column(ru, cw, U + (size_t)j * cw);
    column(rv, cw, V + (size_t)j * cw);
  }
}

int i420ChromaReady(int written, int h) {
  /* Row j reads up to row 2j + 4: ready while 2j + 4 < written. */
  if (written >= h) return h / 2;
  return written > 3 ? (written - 3) / 2 : 0;
}

void i420Frame(const uint8_t *rgb, int w, int h, const I420Matrix *m, uint8_t *out, float *scratch) {
  const int cw = w / 2;
  uint8_t *Y = out, *U = out + (size_t)w * h, *V = U + (size_t)cw * (h / 2);
  float *u = scratch, *v = scratch + (size_t)cw * h;
  /* Each chroma row as soon as its rows are in, while they are still in the cache. */
  for (int y = 0, j = 0; y < h; y++) {
    i420Row(rgb + (size_t)y * w * 3, w, m, Y + (size_t)y * w, u + (size_t)y * cw, v + (size_t)y * cw);
    const int ready = i420ChromaReady(y + 1, h);
    i420Chroma(u, v, cw, h, j, ready, U, V);
    j = ready;
  }
}
