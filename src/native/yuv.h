/*
 * Y'CbCr 4:2:0 (I420) from the network's 8-bit RGB, written the way FFmpeg's swscale writes it for
 * the encoder (rgb24 -> yuv420p, accurate_rnd, bicubic): luma per pixel; chroma from each pair of
 * pixels side by side (centred between them), then an 8-tap bicubic (B=0, C=0.6) filter down the
 * columns that centres each chroma row between its two luma rows. Matches swscale to within one
 * level (test/native-i420.test.ts), so the encoder gets frames it need not convert.
 *
 * The functions are compiled for AVX2; the addon calls them only on CPUs that have it.
 */
#ifndef ESRVID_YUV_H
#define ESRVID_YUV_H
#include <stddef.h>
#include <stdint.h>

/* The RGB -> Y'CbCr coefficients of one matrix and range. */
typedef struct {
  float c[10];
} I420Matrix;

/* kr, kb: the matrix's red and blue luma weights (BT.709: 0.2126, 0.0722); full: pc range, else tv. */
void i420Matrix(I420Matrix *m, float kr, float kb, int full);

/* One RGB row of w pixels (w even): its luma into y, its chroma before the column filter into u and
   v (w/2 values each: pairs of pixels summed, in the matrix's units). */
void i420Row(const uint8_t *rgb, int w, const I420Matrix *m, uint8_t *y, float *u, float *v);

/* Chroma rows [j0, j1) of a frame h rows high, from i420Row's rows (cw = w/2 values each, row k at
   k * cw; rows past the frame's edges repeat the edge row). */
void i420Chroma(const float *u, const float *v, int cw, int h, int j0, int j1, uint8_t *U, uint8_t *V);

/* How many chroma rows of a frame h rows high can be filtered once its rows [0, written) are in
   (each reads four rows either side): all h / 2 once the frame is complete. */
int i420ChromaReady(int written, int h);

/* A whole w x h frame (both even) into out (Y, then U, then V); scratch holds w * h floats. */
void i420Frame(const uint8_t *rgb, int w, int h, const I420Matrix *m, uint8_t *out, float *scratch);

#endif
