#pragma once
// The register-resident kernel's first layer when the input is wider than the chain (the
// tutorial's 784 -> 32). Each warp streams its rows through a ring of stream_stages chunks of
// 16 rows x 32 columns in shared memory: cp.async keeps all but one of them in flight
// while the tensor cores work on the oldest, and the stream runs on from one tile's last
// chunk into the warp's next tile, so no tile starts with an empty pipe.

#include <cstdint>

#include "backends/cuda/fused_tc_device.cuh"

namespace mlprt::backend::cuda::fused {

// Chunks in a warp's ring: T rows, and fp32 rows (twice the bytes per chunk; the shared
// memory of 8 warps' rings must fit beside the weights). Measured on the H200 (builder
// timings, 784-32-10 fp16, 64K rows): 6 / 12 / 16 T stages 45.6 / 40.1 / 40.3 us with rows
// padded to 80 bytes; 12 swizzled stages 36.8 us, 7 (two blocks per SM) 43.1.
inline constexpr int kStreamStagesT = 12;
inline constexpr int kStreamStagesF32 = 6;
__host__ __device__ constexpr int stream_stages(bool f32) {
  return f32 ? kStreamStagesF32 : kStreamStagesT;
}
inline constexpr int kStreamRows = 16;
inline constexpr int kStreamCols = 32;  // a chunk's columns

// Row stride (elements) of a streamed layer's weights in shared memory, k rounded up to whole
// chunks (the padding is zero): for T rows, read by ldmatrix, + 8 (8 rows of 16 bytes fall on
// distinct banks); for fp32 rows, read by 16-byte loads of rows g and g+1 together, an odd
// multiple of 32.
__host__ __device__ constexpr int stream_wld(int k_pad, bool f32) {
  const int k_chunks = (k_pad + kStreamCols - 1) / kStreamCols * kStreamCols;
  if (!f32) return k_chunks + 8;
  return k_chunks % 64 == 32 ? k_chunks : k_chunks + 32;
}

// Bytes of one chunk row in the ring: T rows 64, fp32 rows 128 (both swizzled, below).
__host__ __device__ constexpr int stream_row_bytes(bool f32) { return f32 ? 128 : 64; }

// T rows are not padded but swizzled: 16-byte piece p of chunk row r sits at piece
// p ^ ((r / 2) % 4), so that ldmatrix's 8 rows of one piece fall on distinct banks.
__device__ __forceinline__ int stream_piece(int r, int p) { return p ^ ((r >> 1) & 3); }
// fp32 rows: piece p of row r at p ^ (r % 2), so that one quarter warp's 16-byte reads of rows
// g and g+1 (pieces 2t or 2t+1 of each) fall on distinct banks.
__device__ __forceinline__ int stream_piece_f32(int r, int p) { return p ^ (r & 1); }

__host__ __device__ constexpr int stream_warp_bytes(bool f32) {
  return stream_stages(f32) * kStreamRows * stream_row_bytes(f32);
}

// 16-column groups a streamed layer of n_pad columns computes: 1, 2, 4 or 8 (a compile-time
// count; its weights are staged with zero rows up to it).
__host__ __device__ constexpr int stream_groups(int n_pad) {
  const int g = (n_pad + 15) / 16;
  return g <= 1 ? 1 : g <= 2 ? 2 : g <= 4 ? 4 : 8;
}

// Where the warp's copies stand: the tile and chunk the next copy takes, and its ring slot.
struct StreamCursor {
  int64_t tile;
  int chunk;
  int slot;
};

// What a warp streams: `rows` rows of `k` columns of x, in `chunks` chunks per 16-row tile; the
// warp's tiles are tile_stride apart up to `tiles`. `type`: x's element type, read only by the
// element-wise copies (stream_issue's ELEMS).
struct StreamSource {
  const void* x;
  ElemType type;
  int k;
  int chunks;
  int64_t rows;
  int64_t tiles;
  int64_t tile_stride;
};

// Copies the cursor's chunk (rows of T, k % 8 == 0, or of fp32 with F32, k % 4 == 0; 16-byte
// aligned; zeros past k and past the rows) into its slot, commits it (an empty group once the
// warp's tiles are done, so the group count stays right) and moves the cursor on. ELEMS (F32
// only): x is of any type or alignment, loaded element by element and stored as fp32 (the
// copy is then synchronous; stream_next's __syncwarp publishes it). STAGES: the ring's chunks.
template <bool F32, bool ELEMS = false, int STAGES = stream_stages(F32)>
__device__ __forceinline__ void stream_issue(StreamCursor& at, const StreamSource& src,
                                             unsigned char* ring, int lane) {
  static_assert(F32 || !ELEMS, "element-wise copies store fp32 rows");
  constexpr int kEsize = F32 ? 4 : 2;
  constexpr int kPieces = kStreamCols * kEsize / 16;  // 16-byte pieces per chunk row
  constexpr int kRowBytes = stream_row_bytes(F32);
  if (at.tile < src.tiles) {
    unsigned char* slot = ring + at.slot * (kStreamRows * kRowBytes);
    const int64_t row0 = at.tile * kStreamRows;
    if constexpr (ELEMS) {
      const int col = at.chunk * kStreamCols + lane;
#pragma unroll 4
      for (int r = 0; r < kStreamRows; ++r) {
        const bool valid = row0 + r < src.rows && col < src.k;
        reinterpret_cast<float*>(slot + r * kRowBytes)[stream_piece_f32(r, lane >> 2) * 4 +
                                                       (lane & 3)] =
            valid ? load_elem(src.x, src.type, (row0 + r) * src.k + col) : 0.0f;
      }
    } else {
      // Lane: piece lane % kPieces of rows r0, r0 + kRowStep, ...: one address computed, then
      // steps (the swizzle is the same on all of them: (r / 2) % 4 for T rows, kRowStep 8;
      // r % 2 for fp32 rows, kRowStep 4).
      constexpr int kRowStep = 32 / kPieces;
      static_assert(kRowStep % (F32 ? 2 : 8) == 0, "the swizzle must not change between steps");
      const int r0 = lane / kPieces;
      const int col = at.chunk * kStreamCols + (lane % kPieces) * (16 / kEsize);
      const bool col_valid = col < src.k;
      const int64_t rows_left = src.rows - row0;
      const auto* from =
          static_cast<const unsigned char*>(src.x) + ((row0 + r0) * src.k + col) * kEsize;
      const int64_t step = int64_t{kRowStep} * src.k * kEsize;
      const int piece =
          F32 ? stream_piece_f32(r0, lane % kPieces) : stream_piece(r0, lane % kPieces);
      unsigned char* to = slot + r0 * kRowBytes + piece * 16;
#pragma unroll
      for (int i = 0; i < kStreamRows / kRowStep; ++i) {
        const bool valid = col_valid && r0 + i * kRowStep < rows_left;
        cp_async16(to + i * kRowStep * kRowBytes, valid ? from + i * step : src.x, valid);
      }
    }
  }
  cp_async_commit();
  if (++at.chunk == src.chunks) {
    at.chunk = 0;
    at.tile += src.tile_stride;
  }
  if (++at.slot == STAGES) at.slot = 0;
}

// The first STAGES - 1 chunks of the warp's first tile.
template <bool F32, bool ELEMS = false, int STAGES = stream_stages(F32)>
__device__ __forceinline__ void stream_start(StreamCursor& at, const StreamSource& src,
                                             unsigned char* ring, int lane) {
#pragma unroll
  for (int i = 0; i < STAGES - 1; ++i) stream_issue<F32, ELEMS, STAGES>(at, src, ring, lane);
}

// Waits for the ring's oldest chunk, issues the next copy into the slot read last (every lane
// is past it) and returns the chunk's slot.
template <bool F32, bool ELEMS = false, int STAGES = stream_stages(F32)>
__device__ __forceinline__ const unsigned char* stream_next(StreamCursor& at, int& use,
                                                            const StreamSource& src,
                                                            unsigned char* ring, int lane) {
  cp_async_wait<STAGES - 2>();  // this lane's copies of the oldest chunk are in
  __syncwarp();                 // ... and every lane's
  stream_issue<F32, ELEMS, STAGES>(at, src, ring, lane);
  const unsigned char* slot = ring + use * (kStreamRows * stream_row_bytes(F32));
  if (++use == STAGES) use = 0;
  return slot;
}

// acc[nt] (n8 tile nt: rows g / g+8, columns 8 nt + t2, +1) = the bias pair of its columns, or
// zeros from column n_pad on.
template <int NT>
__device__ __forceinline__ void bias_tiles(float (&acc)[NT][4], const float* bias, int n_pad,
                                           int lane) {
  const int t2 = (lane & 3) * 2;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const float2 b = nt * 8 < n_pad ? *reinterpret_cast<const float2*>(bias + nt * 8 + t2)
                                    : make_float2(0.0f, 0.0f);
    acc[nt][0] = acc[nt][2] = b.x;
    acc[nt][1] = acc[nt][3] = b.y;
  }
}

// The streamed layer on T rows for the warp's current tile: acc[np][0][h] (n8 tile 2 np + h,
// the layout of column_group's accumulators) = bias + x W^T for NP 16-column groups, taking the
// tile's `chunks` chunks from the ring (ldmatrix A fragments, as the staged kernel reads its
// rows) and issuing as many further ones.
template <typename T, int MAXW, int NP>
__device__ __forceinline__ void stream_layer_t(float (&acc)[MAXW / 16][1][2][4], StreamCursor& at,
                                               int& use, const StreamSource& src,
                                               unsigned char* ring, int n_pad, const T* w,
                                               int wld, const float* bias, int lane) {
  static_assert(NP * 16 <= MAXW, "more column groups than the chain's width");
  float part[2 * NP][4];  // n8 tiles
  bias_tiles(part, bias, n_pad, lane);
  // ldmatrix rows: A from the chunk (rows lane % 16, columns 8 (lane / 16) on), B from the
  // weights (as column_group reads them).
  const int a_row = (lane & 15) * stream_row_bytes(false);
  const T* wl = lane_w_row(w, wld, lane);
  for (int c = 0; c < src.chunks; ++c) {
    const unsigned char* slot = stream_next<false>(at, use, src, ring, lane);
#pragma unroll
    for (int ks = 0; ks < kStreamCols / 16; ++ks) {
      uint32_t a[4];
      ldmatrix_x4(a, slot + a_row + stream_piece(lane & 15, (lane >> 4) + ks * 2) * 16);
#pragma unroll
      for (int np = 0; np < NP; ++np) {
        uint32_t b[4];
        ldmatrix_x4(b, wl + np * 16 * wld + c * kStreamCols + ks * 16);
        mma16816<T>(part[2 * np], a, b[0], b[1]);
        mma16816<T>(part[2 * np + 1], a, b[2], b[3]);
      }
    }
  }
#pragma unroll
  for (int nt = 0; nt < MAXW / 8; ++nt) {
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[nt / 2][0][nt % 2][e] = nt < 2 * NP ? part[nt][e] : 0.0f;
  }
}

// A lane's 8 consecutive columns 8t.. (t = lane % 4) of rows g and g+8 (g = lane / 4) of an fp32
// chunk in the ring: v[0] row g, v[1] row g+8, each as two float4.
__device__ __forceinline__ void chunk_rows_f32(float4 (&v)[2][2], const unsigned char* slot,
                                               int lane) {
  const int g = lane >> 2;  // rows g and g+8 share their swizzle
  const unsigned char* row = slot + g * stream_row_bytes(true);
  const int p0 = stream_piece_f32(g, (lane & 3) * 2) * 16;
  const int p1 = stream_piece_f32(g, (lane & 3) * 2 + 1) * 16;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    v[half][0] = *reinterpret_cast<const float4*>(row + half * 8 * stream_row_bytes(true) + p0);
    v[half][1] = *reinterpret_cast<const float4*>(row + half * 8 * stream_row_bytes(true) + p1);
  }
}

// The same on fp32 rows, converted as they are read: a lane reads 8 consecutive columns of each
// of its two rows, which become the A fragments of two k16 steps: step 0 takes columns
// 8t + {0, 1, 2, 3} of lane t (t = lane % 4) where mma.sync expects 2t, 2t+1, 2t+8, 2t+9, and
// step 1 takes 8t + {4, .., 7}. That permutes k within the chunk; the lane reads the same 8
// columns of its weight row (one 16-byte shared load), so every product pairs the right input
// and weight and the sum is unchanged.
template <typename T, int MAXW>
__device__ __forceinline__ void stream_layer_f32(float (&acc)[MAXW / 16][1][2][4],
                                                 StreamCursor& at, int& use,
                                                 const StreamSource& src, unsigned char* ring,
                                                 int n_pad, const T* w, int wld,
                                                 const float* bias, int lane) {
  constexpr int NT = MAXW / 8;
  float part[NT][4];
  bias_tiles(part, bias, n_pad, lane);
  const T* wl = w + (lane >> 2) * wld + (lane & 3) * 8;
  const int n8 = n_pad / 8;
  for (int c = 0; c < src.chunks; ++c) {
    float4 v[2][2];
    chunk_rows_f32(v, stream_next<true>(at, use, src, ring, lane), lane);
    const uint32_t a0[4] = {pack2<T>(v[0][0].x, v[0][0].y), pack2<T>(v[1][0].x, v[1][0].y),
                            pack2<T>(v[0][0].z, v[0][0].w), pack2<T>(v[1][0].z, v[1][0].w)};
    const uint32_t a1[4] = {pack2<T>(v[0][1].x, v[0][1].y), pack2<T>(v[1][1].x, v[1][1].y),
                            pack2<T>(v[0][1].z, v[0][1].w), pack2<T>(v[1][1].z, v[1][1].w)};
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      if (nt >= n8) break;
      const uint4 wv = *reinterpret_cast<const uint4*>(wl + nt * 8 * wld + c * kStreamCols);
      mma16816<T>(part[nt], a0, wv.x, wv.y);
      mma16816<T>(part[nt], a1, wv.z, wv.w);
    }
  }
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[nt / 2][0][nt % 2][e] = part[nt][e];
  }
}

}  // namespace mlprt::backend::cuda::fused
