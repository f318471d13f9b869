// model_file — saving and loading whole models (weights + config + finalised entropy tables).
// The byte layout is specified in data/MODELS.md. Loading rebuilds the model from the stored
// config, then demands that the stored tensors match the model's parameters one to one by name and
// shape; anything else (missing or extra tensors, wrong shapes, bad tables, truncation, a CRC
// mismatch) is an ntc::Error that says what is wrong.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/model.h"

namespace ntc::nn {

enum class WeightFormat { F32, F16 };

std::vector<uint8_t> serialize_model(const Model& m, WeightFormat fmt);
std::unique_ptr<Model> deserialize_model(const uint8_t* data, size_t size, const std::string& origin = "model");

void save_model(const std::string& path, const Model& m, WeightFormat fmt = WeightFormat::F16);  // atomic
std::unique_ptr<Model> load_model(const std::string& path);

// The model's identity in bitstreams (data/MODELS.md): a 64-bit hash of the whole file, four
// independent lanes of 8-byte words, so that it costs a small fraction of reading the file
// (FNV-1a, one byte at a time, took 5 ms of a 50 ms decode for a 6 MB model).
uint64_t model_hash(const uint8_t* data, size_t size);
// The identity that streams made by ntc 0.2 and earlier carry: FNV-1a 64 of the file. Decoders accept
// it too; callers compute it only for a stream that does not carry model_hash.
uint64_t legacy_model_hash(const uint8_t* data, size_t size);
// The identity a decoder demands of a stream that carries stream_hash, for a model whose identity is
// `hash`: `hash`, or the legacy one where the stream carries that (an ntc 0.2 stream). legacy()
// gives the model's legacy identity; it is called only for a stream that does not carry `hash`.
// The one rule of the CLI and the C API.
uint64_t accepted_model_hash(uint64_t stream_hash, uint64_t hash, const std::function<uint64_t()>& legacy);

}  // namespace ntc::nn
