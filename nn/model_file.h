// model_file — saving and loading whole models (weights + config + finalised entropy tables).
// The byte layout is specified in data/MODELS.md. Loading rebuilds the model from the stored
// config, then demands that the stored tensors match the model's parameters one to one by name and
// shape; anything else (missing or extra tensors, wrong shapes, bad tables, truncation, a CRC
// mismatch) is an ntc::Error that says what is wrong.
#pragma once
#include <cstdint>
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

// The model's identity in bitstreams: FNV-1a 64 of its serialized bytes.
uint64_t model_hash(const uint8_t* data, size_t size);

}  // namespace ntc::nn
