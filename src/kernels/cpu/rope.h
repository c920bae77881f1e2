// Rotary position embedding, rotate-half form (HF LlamaRotaryEmbedding / apply_rotary_pos_emb,
// not the interleaved GPT-J form). For a head vector x of width HD, half = HD / 2, position p:
//   inv_freq[i] = theta^(-2i / HD),  a = p * inv_freq[i]           (i < half, angles in double)
//   y[i]        = x[i] * cos a - x[i + half] * sin a
//   y[i + half] = x[i + half] * cos a + x[i] * sin a
// Positions are 0..S-1 in every batch row, whatever the padding (HF without position_ids).
// Backward is the rotation by -a: dx[i] = dy[i] cos a + dy[i+half] sin a,
//   dx[i+half] = dy[i+half] cos a - dy[i] sin a.
#pragma once

#include <cstdint>
#include <vector>

namespace polymoe::kernels {

// cos/sin tables [S, HD/2] (float32 values of double-precision angles).
struct RopeTable {
    int64_t S = 0, half = 0;
    std::vector<float> cos, sin;
};
RopeTable rope_table(int64_t S, int64_t HD, double theta);

// x: [B*S, heads*HD], rotated in place; row t has position t % S.
void rope_forward(float* x, const RopeTable& tab, int64_t B, int64_t S, int64_t heads, int64_t HD);

// dx = rotation of dy by -a, in place on dx: [B*S, heads*HD] (holding dy on entry).
void rope_backward(
    float* dx, const RopeTable& tab, int64_t B, int64_t S, int64_t heads, int64_t HD);

}  // namespace polymoe::kernels
