/*
 * SRVGGNetCompact (Real-ESRGAN's compact models: realesr-general-x4v3, realesr-animevideov3-x4)
 * on the CPU with AVX-512 or AVX2, each 3x3 convolution with its per-channel PReLU fused; a net
 * made for several threads splits each frame into bands of rows.
 *
 * Why: ONNX Runtime's CPU convolutions run these networks' 3x3 convolutions at ~91% of a core's
 * FMA peak, but it cannot fuse a per-channel PReLU into them (its fused activations take one
 * slope for all channels), so every PReLU is extra passes over the feature map: 11% of the run
 * for realesr-animevideov3-x4 at 320x180 (BENCHMARKS.md, "What limits the float32 path now").
 * Here the slope is applied to the accumulators before they are stored: one pass per layer.
 *
 * Layout: NHWC with a one-pixel zero border around every feature map, so the 3x3 window never
 * needs a bounds check; two such maps take turns as a layer's input and output. A strip of P
 * output pixels x 16*OCV output channels lives in OCV*P zmm accumulators; for each of the 9 taps
 * and each input channel, OCV weight vectors are loaded once and each input value broadcast once.
 * Weights are packed [ky][kx][c][m] (m padded to a multiple of 16 with zeros).
 *
 * The frame model's ends are done as the ONNX graph does them, in the same float32 operations:
 * input u8 * (1/255); output = round_half_even(clip((pixel_shuffle(conv_last) + nearest(input)) * 255)).
 * For the encoder the output can go on to I420 (yuv.h) row by row, while the rows are in the cache.
 *
 * CPUs without AVX-512 (most laptops) get the same design in AVX2: 8-float ymm vectors and 16
 * registers, so a strip is 3 pixels x 32 channels (12 accumulators) and a layer's 64 output
 * channels take two passes over the input strip; a 16-channel remainder (the last layer's 48)
 * runs 6 pixels x 16 channels.
 *
 * The kernels are compiled for AVX-512 and AVX2 with target attributes and only run after
 * __builtin_cpu_supports says so; everything else is plain C, so loading the addon on another
 * CPU is safe (esrvid then keeps ONNX Runtime).
 */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "yuv.h"

#define AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma,avx2")))
#define AVX2 __attribute__((target("avx2,fma")))
#include <immintrin.h>

typedef struct {
  int cin, cout, coutPad; /* channels in, out, out padded to 16 */
  float *w;               /* [3][3][cin][coutPad] */
  float *bias;            /* [coutPad] */
  float *slope;           /* [coutPad] or NULL */
} Layer;

/* Instruction sets the kernel has: what the CPU runs decides, ESRVID_NATIVE_ISA may ask for less. */
enum { ISA_NONE = 0, ISA_AVX2 = 2, ISA_AVX512 = 3 };

typedef struct Net Net;

/* A reusable barrier from a mutex and a condition (macOS has no pthread_barrier_t). */
typedef struct {
  pthread_mutex_t mutex;
  pthread_cond_t cond;
  int count, waiting;
  unsigned phase;
} Barrier;

static int barrierInit(Barrier *b, int count) {
  b->count = count, b->waiting = 0, b->phase = 0;
  if (pthread_mutex_init(&b->mutex, NULL) != 0) return -1;
  if (pthread_cond_init(&b->cond, NULL) != 0) return pthread_mutex_destroy(&b->mutex), -1;
  return 0;
}

static void barrierWait(Barrier *b) {
  pthread_mutex_lock(&b->mutex);
  const unsigned phase = b->phase;
  if (++b->waiting == b->count) {
    b->waiting = 0, b->phase++;
    pthread_cond_broadcast(&b->cond);
  } else {
    while (phase == b->phase) pthread_cond_wait(&b->cond, &b->mutex);
  }
  pthread_mutex_unlock(&b->mutex);
}

static void barrierDestroy(Barrier *b) {
  pthread_cond_destroy(&b->cond);
  pthread_mutex_destroy(&b->mutex);
}

/* The threads of a net with more than one (created on its first frame, one of them the caller's):
   each takes a band of rows of every layer, meeting at a barrier between layers. */
typedef struct {
  pthread_t *tids; /* [threads]: [0] unused, the caller's */
  Barrier barrier;
  /* The frame every thread works on; quit: the threads return (the net is being freed). */
  const uint8_t *src;
  uint8_t *dst;
  int quit;
} Team;

struct Net {
  int layers, scale, outCh, isa, threads;
  Team *team;
  Layer *layer;
  /* Work buffers for the last frame size seen (one net per worker thread: never shared). */
  int h, w;
  float *input, *a, *b;
  /* Frames written as I420 for the encoder (yuv.h) instead of RGB: set by run() for the frames of
     one call. rows: each thread's RGB rows of the input row being finished; u, v: the frame's
     chroma rows before the column filter. Sized for h, w (ensureI420). */
  int i420;
  I420Matrix matrix;
  uint8_t *rows;
  float *u, *v;
  int i420h, i420w;
};

/* Pixels a strip covers for OCV output-channel vectors: as many accumulators as leave room for the weights. */
#define STRIP_P(OCV) ((OCV) == 4 ? 6 : (OCV) == 3 ? 9 : (OCV) == 2 ? 12 : 14)

#define DEF_STRIP(OCV)                                                                                              \
  AVX512 static void strip##OCV(const float *in, int rowStride, int cin, const Layer *l, int m0, float *out, int outStride) { \
    (void)m0; /* one block of all the layer's channels: m0 is 0 */                                                 \
    enum { P = STRIP_P(OCV) };                                                                                      \
    __m512 acc[OCV][P];                                                                                             \
    for (int o = 0; o < OCV; o++) {                                                                                 \
      __m512 b = _mm512_loadu_ps(l->bias + 16 * o);                                                                 \
      for (int p = 0; p < P; p++) acc[o][p] = b;                                                                    \
    }                                                                                                               \
    for (int ky = 0; ky < 3; ky++)                                                                                  \
      for (int kx = 0; kx < 3; kx++) {                                                                              \
        const float *src = in + ky * rowStride + kx * cin;                                                          \
        const float *wt = l->w + (size_t)(ky * 3 + kx) * cin * 16 * OCV;                                           \
        for (int c = 0; c < cin; c++) {                                                                             \
          __m512 wv[OCV];                                                                                           \
          for (int o = 0; o < OCV; o++) wv[o] = _mm512_loadu_ps(wt + (size_t)c * 16 * OCV + 16 * o);                \
          for (int p = 0; p < P; p++) {                                                                             \
            __m512 x = _mm512_set1_ps(src[p * cin + c]);                                                            \
            for (int o = 0; o < OCV; o++) acc[o][p] = _mm512_fmadd_ps(x, wv[o], acc[o][p]);                         \
          }                                                                                                         \
        }                                                                                                           \
      }                                                                                                             \
    const __m512 zero = _mm512_setzero_ps();                                                                        \
    for (int o = 0; o < OCV; o++) {                                                                                 \
      const __m512 s = l->slope ? _mm512_loadu_ps(l->slope + 16 * o) : zero;                                        \
      for (int p = 0; p < P; p++) {                                                                                 \
        __m512 v = acc[o][p];                                                                                       \
        if (l->slope) v = _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, s);                     \
        _mm512_storeu_ps(out + (size_t)p * outStride + 16 * o, v);                                                  \
      }                                                                                                             \
    }                                                                                                               \
  }
DEF_STRIP(1)
DEF_STRIP(2)
DEF_STRIP(3)
DEF_STRIP(4)

/* A strip function: P output pixels of one block of a layer's output channels (from m0 on). */
typedef void (*StripFn)(const float *in, int rowStride, int cin, const Layer *l, int m0, float *out, int outStride);
static const StripFn STRIPS[5] = {NULL, strip1, strip2, strip3, strip4};

/* The zero border of a layer's output map for output rows y0..y1-1 (and the top and bottom rows when
   the range touches them), in this layer's layout: the buffer held other layouts (another channel
   count, the last layer of the previous frame) whose interiors fall on these places. */
static void zeroBorder(const Layer *l, float *out, int h, int w, int y0, int y1) {
  const int outRow = (w + 2) * l->coutPad;
  /* With more threads than rows, bands can be empty: the top and bottom rows go to the one band
     that has rows at that end. */
  if (y0 == 0 && y1 > 0) memset(out, 0, sizeof(float) * (size_t)outRow);
  if (y1 == h && y0 < h) memset(out + (size_t)(h + 1) * outRow, 0, sizeof(float) * (size_t)outRow);
  for (int y = y0 + 1; y <= y1; y++) {
    memset(out + (size_t)y * outRow, 0, sizeof(float) * l->coutPad);
    memset(out + (size_t)y * outRow + (size_t)(w + 1) * l->coutPad, 0, sizeof(float) * l->coutPad);
  }
}

/* AVX2: a strip of P pixels x 8*V output channels from channel m0 on (V = 4: 32 channels, P = 3;
   V = 2: 16 channels, P = 6), its V*P accumulators in ymm registers. */
#define STRIP8_P(V) ((V) == 4 ? 3 : 6)

#define DEF_STRIP8(V)                                                                                               \
  AVX2 static void strip8_##V(const float *in, int rowStride, int cin, const Layer *l, int m0, float *out, int outStride) { \
    enum { P = STRIP8_P(V) };                                                                                       \
    /* Broadcasts with _mm256_set1_ps: with _mm256_broadcast_ss (a load through a float pointer)    \
       GCC 12 stored every accumulator back to the stack after each FMA (3.8x slower). */             \
    const size_t stride = (size_t)l->coutPad;                                                                       \
    const float *const weights = l->w + m0, *const slope = l->slope ? l->slope + m0 : NULL;                        \
    __m256 acc[V][P];                                                                                               \
    for (int o = 0; o < V; o++) {                                                                                   \
      __m256 b = _mm256_loadu_ps(l->bias + m0 + 8 * o);                                                             \
      for (int p = 0; p < P; p++) acc[o][p] = b;                                                                    \
    }                                                                                                               \
    for (int ky = 0; ky < 3; ky++)                                                                                  \
    for (int kx = 0; kx < 3; kx++) {                                                                                \
      const float *src = in + ky * rowStride + kx * cin;                                                            \
      const float *wt = weights + (size_t)(ky * 3 + kx) * cin * stride;                                             \
      for (int c = 0; c < cin; c++, wt += stride) {                                                                 \
        __m256 wv[V];                                                                                               \
        for (int o = 0; o < V; o++) wv[o] = _mm256_loadu_ps(wt + 8 * o);                    \
        for (int p = 0; p < P; p++) {                                                       \
          __m256 x = _mm256_set1_ps(src[p * cin + c]);                                                              \
          for (int o = 0; o < V; o++) acc[o][p] = _mm256_fmadd_ps(x, wv[o], acc[o][p]);   \
        }                                                                                                           \
      }                                                                                                             \
    }                                                                                                               \
    const __m256 zero = _mm256_setzero_ps();                                                                        \
    if (slope)                                                                                                      \
      for (int o = 0; o < V; o++) {                                                                                 \
        const __m256 s = _mm256_loadu_ps(slope + 8 * o);                                                            \
        for (int p = 0; p < P; p++) acc[o][p] = _mm256_blendv_ps(acc[o][p], _mm256_mul_ps(acc[o][p], s), _mm256_cmp_ps(acc[o][p], zero, _CMP_LT_OQ)); \
      }                                                                                                             \
    for (int o = 0; o < V; o++)                                                                                     \
      for (int p = 0; p < P; p++) _mm256_storeu_ps(out + (size_t)p * outStride + m0 + 8 * o, acc[o][p]);            \
  }
DEF_STRIP8(4)
DEF_STRIP8(2)

/* A layer's output channels as blocks, each with its strip function and the pixels a strip covers:
   with AVX-512 one block of every channel; with AVX2 blocks of 32 channels and a last one of 16. */
typedef struct {
  StripFn strip;
  int m0, channels, P;
} Block;

static int blocksFor(const Layer *l, int isa, Block *blocks) {
  if (isa == ISA_AVX512) {
    const int ocv = l->coutPad / 16;
    blocks[0] = (Block){STRIPS[ocv], 0, l->coutPad, STRIP_P(ocv)};
    return 1;
  }
  int n = 0;
  for (int m0 = 0; m0 < l->coutPad; n++) {
    const int v = l->coutPad - m0 >= 32 ? 4 : 2;
    blocks[n] = (Block){v == 4 ? strip8_4 : strip8_2, m0, 8 * v, STRIP8_P(v)};
    m0 += 8 * v;
  }
  return n;
}

/* One layer, output rows y0..y1-1: bordered input (h+2) x (w+2) x cin -> the interior of a bordered
   (h+2) x (w+2) x coutPad map, block by block along each row. */
static void convLayer(const Layer *l, int isa, const float *in, float *out, int h, int w, int y0, int y1) {
  Block blocks[4];
  const int nb = blocksFor(l, isa, blocks);
  const int inRow = (w + 2) * l->cin, outRow = (w + 2) * l->coutPad;
  float scratch[14 * 64];
  zeroBorder(l, out, h, w, y0, y1);
  for (int y = y0; y < y1; y++) {
    const float *row = in + (size_t)y * inRow;
    float *orow = out + (size_t)(y + 1) * outRow + l->coutPad;
    for (const Block *b = blocks; b < blocks + nb; b++) {
      int x = 0;
      for (; x + b->P <= w; x += b->P) b->strip(row + (size_t)x * l->cin, inRow, l->cin, l, b->m0, orow + (size_t)x * l->coutPad, l->coutPad);
      if (x < w) {
        /* The last pixels of the row: a whole strip into scratch (its reads past the row stay inside the
           buffer, which has slack at the end), then the pixels that exist. */
        b->strip(row + (size_t)x * l->cin, inRow, l->cin, l, b->m0, scratch, l->coutPad);
        for (int p = 0; p < w - x; p++) memcpy(orow + (size_t)(x + p) * l->coutPad + b->m0, scratch + (size_t)p * l->coutPad + b->m0, sizeof(float) * b->channels);
      }
    }
  }
}

/* Zeroed memory on a 64-byte boundary: a 512-bit load or store that straddles two cache lines
   costs two (calloc's 16-byte alignment made every weight load straddle: 4-5% of a layer). */
static void *zeroed(size_t bytes) {
  bytes = (bytes + 63) / 64 * 64;
  void *p = aligned_alloc(64, bytes);
  if (p) memset(p, 0, bytes);
  return p;
}

/* Bytes of a bordered map, with slack for the last strip's reads past the end. */
static size_t mapBytes(int h, int w, int ch) { return sizeof(float) * ((size_t)(h + 2) * (w + 2) * ch + 16 * 64 * 3); }

static int ensureBuffers(Net *n, int h, int w) {
  if (n->h == h && n->w == w) return 1;
  int widest = 0;
  for (int i = 0; i < n->layers; i++) widest = n->layer[i].coutPad > widest ? n->layer[i].coutPad : widest;
  free(n->input), free(n->a), free(n->b);
  n->input = zeroed(mapBytes(h, w, 3)), n->a = zeroed(mapBytes(h, w, widest)), n->b = zeroed(mapBytes(h, w, widest));
  if (!n->input || !n->a || !n->b) {
    free(n->input), free(n->a), free(n->b);
    n->input = n->a = n->b = NULL, n->h = n->w = 0;
    return 0;
  }
  n->h = h, n->w = w;
  return 1;
}

/* I420 work buffers for frames of h x w input pixels: each thread's r output rows of RGB, and the
   chroma rows of a whole frame before the column filter. */
static int ensureI420(Net *n, int h, int w) {
  if (n->i420h == h && n->i420w == w) return 1;
  const size_t W = (size_t)w * n->scale, H = (size_t)h * n->scale;
  free(n->rows), free(n->u), free(n->v);
  n->rows = zeroed((size_t)n->threads * n->scale * W * 3);
  n->u = zeroed(sizeof(float) * W / 2 * H), n->v = zeroed(sizeof(float) * W / 2 * H);
  if (!n->rows || !n->u || !n->v) {
    free(n->rows), free(n->u), free(n->v);
    n->rows = NULL, n->u = n->v = NULL, n->i420h = n->i420w = 0;
    return 0;
  }
  n->i420h = h, n->i420w = w;
  return 1;
}

/* Thread t of T's part of one frame: rows [h*t/T, h*(t+1)/T) of the input's scaling, of every
   layer (a barrier after each: the next layer reads the neighbours' rows) and of the output. */
AVX2 static void forwardRows(Net *n, const uint8_t *src, uint8_t *dst, int t, int T) {
  const int h = n->h, w = n->w, r = n->scale, cp = n->layer[n->layers - 1].coutPad;
  const int y0 = (int)((long)h * t / T), y1 = (int)((long)h * (t + 1) / T);
  const float inv255 = 1.0f / 255.0f;
  for (int y = y0; y < y1; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) n->input[((size_t)(y + 1) * (w + 2) + x + 1) * 3 + c] = (float)src[((size_t)y * w + x) * 3 + c] * inv255;
  if (T > 1) barrierWait(&n->team->barrier);
  const float *in = n->input;
  float *out = n->a;
  for (int i = 0; i < n->layers; i++) {
    convLayer(&n->layer[i], n->isa, in, out, h, w, y0, y1);
    if (T > 1) barrierWait(&n->team->barrier);
    in = out;
    out = out == n->a ? n->b : n->a;
  }
  /* in: the last layer's output. Pixel shuffle (CRD: channel c*r*r + i*r + j), the input added back,
     into the frame's RGB rows, or for I420 into this thread's rows and from them into Y and the
     unfiltered chroma rows. */
  const int W = w * r, H = h * r, cw = W / 2;
  uint8_t *rows = n->i420 ? n->rows + (size_t)t * r * W * 3 : NULL;
  uint8_t *U = dst + (size_t)W * H, *V = U + (size_t)cw * (H / 2);
  /* Chroma rows are filtered as soon as the rows they read (four either side, the frame's edge
     rows repeated) are written, while those are still in the cache: this band's rows from its
     first that reads none of the band above, up to those that read the band below. */
  const int jEnd = y1 * r / 2, jFirst = y0 * r / 2;
  /* The first row that reads nothing above the band (2j - 3 >= y0 * r): the band's top rows wait. */
  const int jInside = y0 == 0 ? 0 : (y0 * r + 4) / 2 < jEnd ? (y0 * r + 4) / 2 : jEnd;
  int j = jInside;
  for (int y = y0; y < y1; y++) {
    uint8_t *oy = n->i420 ? rows : dst + (size_t)y * r * W * 3;
    for (int x = 0; x < w; x++) {
      const float *px = in + ((size_t)(y + 1) * (w + 2) + x + 1) * cp;
      const float *u = n->input + ((size_t)(y + 1) * (w + 2) + x + 1) * 3;
      for (int i = 0; i < r; i++)
        for (int jj = 0; jj < r; jj++) {
          uint8_t *o = oy + ((size_t)i * W + (size_t)x * r + jj) * 3;
          for (int c = 0; c < n->outCh; c++) {
            float v = (px[c * r * r + i * r + jj] + u[c]) * 255.0f;
            v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
            o[c] = (uint8_t)nearbyintf(v);
          }
        }
    }
    if (!n->i420) continue;
    for (int i = 0; i < r; i++) {
      const int oyRow = y * r + i;
      i420Row(rows + (size_t)i * W * 3, W, &n->matrix, dst + (size_t)oyRow * W, n->u + (size_t)oyRow * cw, n->v + (size_t)oyRow * cw);
    }
    /* Output rows [y0 * r, (y + 1) * r) are in: the band's rows that read no further. */
    const int ready = i420ChromaReady((y + 1) * r, H), last = ready < jEnd ? ready : jEnd;
    if (last > j) i420Chroma(n->u, n->v, cw, H, j, last, U, V), j = last;
  }
  if (n->i420) {
    /* The rows that read the neighbouring bands, once those are written. */
    if (T > 1) barrierWait(&n->team->barrier);
    i420Chroma(n->u, n->v, cw, H, jFirst, jInside, U, V);
    i420Chroma(n->u, n->v, cw, H, j, jEnd, U, V);
  }
}

typedef struct {
  Net *n;
  int t;
} TeamSeat;

/* A team thread: waits for a frame (or quit) at the barrier, does its rows, meets the others after. */
static void *teamThread(void *arg) {
  TeamSeat *seat = arg;
  Net *n = seat->n;
  const int t = seat->t;
  free(seat);
  for (;;) {
    barrierWait(&n->team->barrier);
    if (n->team->quit) return NULL;
    forwardRows(n, n->team->src, n->team->dst, t, n->threads);
    barrierWait(&n->team->barrier);
  }
}

/* Tells the net's other threads to quit at the barrier they wait at, and frees the team. */
static void stopTeam(Net *n) {
  if (!n->team) return;
  n->team->quit = 1;
  barrierWait(&n->team->barrier);
  for (int t = 1; t < n->threads; t++) pthread_join(n->team->tids[t], NULL);
  barrierDestroy(&n->team->barrier);
  free(n->team->tids), free(n->team);
  n->team = NULL;
}

/* The net's other threads, started once; 0 when they cannot be (the net then runs on one thread). */
static int startTeam(Net *n) {
  Team *team = calloc(1, sizeof(Team));
  if (!team) return 0;
  team->tids = calloc((size_t)n->threads, sizeof(pthread_t));
  if (!team->tids || barrierInit(&team->barrier, n->threads) != 0) return free(team->tids), free(team), 0;
  n->team = team;
  for (int t = 1; t < n->threads; t++) {
    TeamSeat *seat = malloc(sizeof(TeamSeat));
    if (!seat || pthread_create(&team->tids[t], NULL, teamThread, (seat->n = n, seat->t = t, seat)) != 0) {
      /* Fewer threads than asked: the team is the t threads started (this one included), which
         stopTeam ends; then the net runs alone. No thread is past the first barrier yet, so its
         count can change. */
      free(seat);
      pthread_mutex_lock(&team->barrier.mutex);
      team->barrier.count = n->threads = t;
      pthread_mutex_unlock(&team->barrier.mutex);
      stopTeam(n);
      n->threads = 1;
      return 0;
    }
  }
  return 1;
}

/* One frame: u8 h x w x 3 in, u8 (h*scale) x (w*scale) x 3 out. Each layer writes its map's
   interior and zeroes its border (convLayer); the input map's border is never written. The ends
   are compiled for AVX2, which every CPU the kernel runs on has. */
static void forward(Net *n, const uint8_t *src, uint8_t *dst) {
  if (n->threads > 1 && !n->team) startTeam(n);
  if (!n->team) {
    forwardRows(n, src, dst, 0, 1);
    return;
  }
  n->team->src = src, n->team->dst = dst;
  barrierWait(&n->team->barrier);
  forwardRows(n, src, dst, 0, n->threads);
  barrierWait(&n->team->barrier);
}


/* The widest instruction set this CPU runs, capped by ESRVID_NATIVE_ISA=avx2 (tests and benchmarks of the AVX2 path on AVX-512 machines). */
static int cpuIsa(void) {
  __builtin_cpu_init();
  const char *cap = getenv("ESRVID_NATIVE_ISA");
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && !(cap && strcmp(cap, "avx2") == 0))
    return ISA_AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ISA_AVX2;
  return ISA_NONE;
}

/* ---- Node-API ---- */

static void freeNet(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  Net *n = data;
  stopTeam(n);
  for (int i = 0; i < n->layers; i++) free(n->layer[i].w), free(n->layer[i].bias), free(n->layer[i].slope);
  free(n->layer), free(n->input), free(n->a), free(n->b), free(n->rows), free(n->u), free(n->v), free(n);
}

static napi_value throwError(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static const float *floatArray(napi_env env, napi_value v, size_t *length) {
  napi_typedarray_type type;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, length, &data, NULL, NULL) != napi_ok || type != napi_float32_array) return NULL;
  return data;
}

/* createNet(layers: {weight: Float32Array (OIHW), bias: Float32Array, slope?: Float32Array, cin, cout}[], scale, outCh, threads = 1) */
static napi_value createNet(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t count;
  int32_t scale, outCh;
  if (argc < 3 || napi_get_array_length(env, argv[0], &count) != napi_ok || count == 0) return throwError(env, "createNet: layers expected");
  napi_get_value_int32(env, argv[1], &scale);
  napi_get_value_int32(env, argv[2], &outCh);
  Net *n = calloc(1, sizeof(Net));
  int32_t threads = 1;
  if (argc >= 4) {
    napi_valuetype t;
    napi_typeof(env, argv[3], &t);
    if (t == napi_number) napi_get_value_int32(env, argv[3], &threads);
  }
  n->layers = (int)count, n->scale = scale, n->outCh = outCh, n->isa = cpuIsa();
  n->threads = threads < 1 ? 1 : threads > 256 ? 256 : threads;
  if (n->isa == ISA_NONE) return free(n), throwError(env, "createNet: this CPU has neither AVX-512 nor AVX2 with FMA");
  n->layer = calloc(count, sizeof(Layer));
  for (uint32_t i = 0; i < count; i++) {
    napi_value obj, v;
    napi_get_element(env, argv[0], i, &obj);
    Layer *l = &n->layer[i];
    int32_t cin, cout;
    napi_get_named_property(env, obj, "cin", &v), napi_get_value_int32(env, v, &cin);
    napi_get_named_property(env, obj, "cout", &v), napi_get_value_int32(env, v, &cout);
    if (cin < 1 || cin > 64 || cout < 1 || cout > 64) return freeNet(env, n, NULL), throwError(env, "createNet: 1 to 64 channels per layer");
    l->cin = cin, l->cout = cout, l->coutPad = (cout + 15) / 16 * 16;
    size_t len;
    napi_get_named_property(env, obj, "weight", &v);
    const float *w = floatArray(env, v, &len);
    if (!w || len != (size_t)cout * cin * 9) return freeNet(env, n, NULL), throwError(env, "createNet: weight must be a Float32Array of cout*cin*9");
    l->w = zeroed(sizeof(float) * 9 * (size_t)cin * l->coutPad);
    for (int m = 0; m < cout; m++)
      for (int c = 0; c < cin; c++)
        for (int k = 0; k < 9; k++) l->w[((size_t)k * cin + c) * l->coutPad + m] = w[((size_t)m * cin + c) * 9 + k];
    napi_get_named_property(env, obj, "bias", &v);
    const float *b = floatArray(env, v, &len);
    if (!b || len != (size_t)cout) return freeNet(env, n, NULL), throwError(env, "createNet: bias must be a Float32Array of cout");
    l->bias = zeroed(sizeof(float) * l->coutPad);
    memcpy(l->bias, b, sizeof(float) * cout);
    bool hasSlope = false;
    napi_has_named_property(env, obj, "slope", &hasSlope);
    if (hasSlope) {
      napi_get_named_property(env, obj, "slope", &v);
      napi_valuetype t;
      napi_typeof(env, v, &t);
      if (t != napi_undefined) {
        const float *s = floatArray(env, v, &len);
        if (!s || len != (size_t)cout) return freeNet(env, n, NULL), throwError(env, "createNet: slope must be a Float32Array of cout");
        l->slope = zeroed(sizeof(float) * l->coutPad);
        memcpy(l->slope, s, sizeof(float) * cout);
      }
    }
    if (i > 0 && n->layer[i - 1].cout != cin) return freeNet(env, n, NULL), throwError(env, "createNet: layer channels do not chain");
  }
  if (n->layer[0].cin != 3 || n->layer[count - 1].cout != outCh * scale * scale || outCh != 3) return freeNet(env, n, NULL), throwError(env, "createNet: not a 3-channel frame model");
  napi_value external;
  napi_create_external(env, n, freeNet, NULL, &external);
  return external;
}

/* The I420 matrix from a Float32Array [kr, kb, full]; 0 when v is not one. */
static int matrixArg(napi_env env, napi_value v, I420Matrix *m) {
  size_t len;
  const float *k = floatArray(env, v, &len);
  if (!k || len != 3 || !(k[0] > 0.f && k[0] < 1.f) || !(k[1] > 0.f && k[1] < 1.f) || k[0] + k[1] >= 1.f) return 0;
  i420Matrix(m, k[0], k[1], k[2] != 0.f);
  return 1;
}

/* run(net, input: Uint8Array (frames x h x w x 3), frames, h, w, output: Uint8Array, i420?: Float32Array [kr, kb, full]):
   output frames are RGB (h*r x w*r x 3), or with i420 the encoder's Y'CbCr 4:2:0 planes (yuv.h). */
static napi_value run(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  Net *n;
  if (argc < 6 || napi_get_value_external(env, argv[0], (void **)&n) != napi_ok) return throwError(env, "run: net expected");
  int32_t frames, h, w;
  napi_get_value_int32(env, argv[2], &frames), napi_get_value_int32(env, argv[3], &h), napi_get_value_int32(env, argv[4], &w);
  napi_typedarray_type ti, to;
  size_t li, lo;
  void *in, *out;
  if (napi_get_typedarray_info(env, argv[1], &ti, &li, &in, NULL, NULL) != napi_ok || ti != napi_uint8_array ||
      napi_get_typedarray_info(env, argv[5], &to, &lo, &out, NULL, NULL) != napi_ok || to != napi_uint8_array)
    return throwError(env, "run: Uint8Arrays expected");
  napi_valuetype t = napi_undefined;
  if (argc >= 7) napi_typeof(env, argv[6], &t);
  int i420 = t != napi_undefined && t != napi_null;
  if (i420 && !matrixArg(env, argv[6], &n->matrix)) return throwError(env, "run: i420 must be a Float32Array [kr, kb, full]");
  const size_t inFrame = (size_t)h * w * 3, rgbFrame = inFrame * n->scale * n->scale;
  const size_t outFrame = i420 ? rgbFrame / 2 : rgbFrame;
  if (frames < 1 || h < 1 || w < 1 || li < inFrame * frames || lo < outFrame * frames) return throwError(env, "run: buffers smaller than the frames");
  if (i420 && (((long)h * n->scale) % 2 || ((long)w * n->scale) % 2)) return throwError(env, "run: i420 needs an even output width and height");
  if (!ensureBuffers(n, h, w)) return throwError(env, "run: out of memory for the feature maps");
  if (i420 && !ensureI420(n, h, w)) return throwError(env, "run: out of memory for the I420 rows");
  n->i420 = i420;
  for (int f = 0; f < frames; f++) forward(n, (const uint8_t *)in + inFrame * f, (uint8_t *)out + outFrame * f);
  return NULL;
}

/* toI420(rgb: Uint8Array (h x w x 3), h, w, i420: Float32Array [kr, kb, full], output: Uint8Array (w*h*3/2),
   scratch: Float32Array (w*h, the caller's, reused frame after frame)): one frame as run() writes it with i420,
   for frames that were put together from tiles. */
static napi_value toI420(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 6) return throwError(env, "toI420: 6 arguments expected");
  int32_t h, w;
  napi_get_value_int32(env, argv[1], &h), napi_get_value_int32(env, argv[2], &w);
  napi_typedarray_type ti, to;
  size_t li, lo;
  void *in, *out;
  I420Matrix m;
  if (napi_get_typedarray_info(env, argv[0], &ti, &li, &in, NULL, NULL) != napi_ok || ti != napi_uint8_array ||
      napi_get_typedarray_info(env, argv[4], &to, &lo, &out, NULL, NULL) != napi_ok || to != napi_uint8_array)
    return throwError(env, "toI420: Uint8Arrays expected");
  if (!matrixArg(env, argv[3], &m)) return throwError(env, "toI420: i420 must be a Float32Array [kr, kb, full]");
  if (h < 2 || w < 2 || h % 2 || w % 2) return throwError(env, "toI420: the width and height must be even");
  size_t ls;
  float *scratch = (float *)floatArray(env, argv[5], &ls);
  if (li < (size_t)h * w * 3 || lo < (size_t)h * w * 3 / 2 || !scratch || ls < (size_t)h * w) return throwError(env, "toI420: buffers smaller than the frame");
  if (cpuIsa() == ISA_NONE) return throwError(env, "toI420: this CPU has no AVX2");
  i420Frame(in, w, h, &m, out, scratch);
  return NULL;
}

static napi_value supported(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  napi_get_boolean(env, cpuIsa() != ISA_NONE, &v);
  return v;
}

/* "avx512", "avx2" or "": what createNet's nets run. */
static napi_value isa(napi_env env, napi_callback_info info) {
  (void)info;
  const int i = cpuIsa();
  napi_value v;
  napi_create_string_utf8(env, i == ISA_AVX512 ? "avx512" : i == ISA_AVX2 ? "avx2" : "", NAPI_AUTO_LENGTH, &v);
  return v;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"createNet", NULL, createNet, NULL, NULL, NULL, napi_default, NULL},
      {"run", NULL, run, NULL, NULL, NULL, napi_default, NULL},
      {"toI420", NULL, toI420, NULL, NULL, NULL, napi_default, NULL},
      {"supported", NULL, supported, NULL, NULL, NULL, napi_default, NULL},
      {"isa", NULL, isa, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof *props, props);
  return exports;
}
