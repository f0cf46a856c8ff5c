// safetensors: parsing, f32 conversion (bit patterns), writing, and one test per malformed file.
#include "model-loader-test-util.h"

#include "common/error.h"
#include "model/safetensors.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

namespace fhegpt::model {
namespace {

using test::as_bytes;
using test::expect_error;
using test::raw_safetensors;
using test::ScratchDir;
using test::u64_le;
using test::write_file;

uint32_t bits_of(float f) { return std::bit_cast<uint32_t>(f); }

// Parses a file written as raw bytes to `dir/name`, through the file API.
SafetensorsFile write_and_open(const ScratchDir & dir, const std::string & bytes,
                               const std::string & name = "t.safetensors") {
    write_file(dir.file(name), bytes);
    return open_safetensors(dir.file(name));
}

std::string header_length_of(const std::string & path) {
    SafetensorsFile f = open_safetensors(path);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | f.mapping->bytes()[static_cast<size_t>(i)];
    return std::to_string(n);
}

// ---- round trips -----------------------------------------------------------------------------

TEST(Safetensors, RoundTripF32IsBitExactAndZeroCopy) {
    ScratchDir dir;
    const float inf = std::numeric_limits<float>::infinity();
    std::vector<float> a = {0.0f, -0.0f, 1.0f, -3.25f, 1e-45f /* subnormal */, 3.4e38f, inf, -inf, 0.1f, 123456.789f};
    std::vector<float> b = {42.0f};
    std::vector<SafetensorsTensorToWrite> tensors = {{"a", SafetensorsDtype::F32, {2, 5}, a},
                                                     {"scalar", SafetensorsDtype::F32, {}, b}};
    write_safetensors(dir.file("x.safetensors"), tensors, {{"format", "pt"}, {"note", "tiny"}});

    SafetensorsFile f = open_safetensors(dir.file("x.safetensors"));
    const Safetensors & st = f.contents;
    EXPECT_EQ(st.source, dir.file("x.safetensors"));
    ASSERT_EQ(st.tensors.size(), 2u);
    EXPECT_EQ(st.metadata, (std::map<std::string, std::string>{{"format", "pt"}, {"note", "tiny"}}));
    const SafetensorsTensor * ta = st.find("a");
    ASSERT_NE(ta, nullptr);
    EXPECT_EQ(ta->dtype, SafetensorsDtype::F32);
    EXPECT_EQ(ta->shape, (std::vector<int64_t>{2, 5}));
    EXPECT_EQ(ta->numel, 10u);
    EXPECT_EQ(ta->data.size(), 40u);
    std::optional<std::span<const float>> view = tensor_f32_view(*ta);
    ASSERT_TRUE(view.has_value());
    // Zero copy: the view points into the mapping.
    const uint8_t * begin = f.mapping->bytes().data();
    const uint8_t * p = reinterpret_cast<const uint8_t *>(view->data());
    EXPECT_TRUE(p >= begin && p + 40 <= begin + f.mapping->size());
    ASSERT_EQ(view->size(), a.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(bits_of((*view)[i]), bits_of(a[i])) << i;

    const SafetensorsTensor * ts = st.find("scalar");
    ASSERT_NE(ts, nullptr);
    EXPECT_TRUE(ts->shape.empty());
    EXPECT_EQ(ts->numel, 1u);
    EXPECT_EQ(tensor_to_f32(*ts, st.source), std::vector<float>{42.0f});
    EXPECT_EQ(st.find("missing"), nullptr);
}

TEST(Safetensors, WriterAlignsHeaderToEightBytes) {
    ScratchDir dir;
    for (const char * name : {"a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh"}) {
        std::vector<float> v = {1.0f, 2.0f, 3.0f};
        std::vector<SafetensorsTensorToWrite> tensors = {{name, SafetensorsDtype::F32, {3}, v}};
        write_safetensors(dir.file("x.safetensors"), tensors);
        EXPECT_EQ(std::stoull(header_length_of(dir.file("x.safetensors"))) % 8, 0u) << name;
    }
}

TEST(Safetensors, WriterPutsWideDtypesFirstSoF32StaysAligned) {
    ScratchDir dir;
    std::vector<float> odd = {1.0f, 2.0f, 3.0f}; // 6 bytes in F16: would misalign what follows
    std::vector<float> wide = {4.0f, 5.0f};
    std::vector<SafetensorsTensorToWrite> tensors = {{"half", SafetensorsDtype::F16, {3}, odd},
                                                     {"full", SafetensorsDtype::F32, {2}, wide}};
    write_safetensors(dir.file("x.safetensors"), tensors);
    SafetensorsFile f = open_safetensors(dir.file("x.safetensors"));
    const SafetensorsTensor * full = f.contents.find("full");
    ASSERT_NE(full, nullptr);
    EXPECT_EQ(full->data_begin, 0u);
    EXPECT_EQ(f.contents.find("half")->data_begin, 8u);
    ASSERT_TRUE(tensor_f32_view(*full).has_value());
    EXPECT_EQ(std::vector<float>(tensor_f32_view(*full)->begin(), tensor_f32_view(*full)->end()), wide);
    EXPECT_EQ(tensor_to_f32(*f.contents.find("half"), "x"), odd);
}

TEST(Safetensors, RoundTripF16StoresKnownBitPatterns) {
    ScratchDir dir;
    const float inf = std::numeric_limits<float>::infinity();
    // value -> IEEE binary16 bits
    std::vector<std::pair<float, uint16_t>> cases = {
        {1.0f, 0x3c00},     {-2.0f, 0xc000},           {0.5f, 0x3800},  {65504.0f, 0x7bff}, {0x1p-14f, 0x0400},
        {0x1p-24f, 0x0001}, {1023 * 0x1p-24f, 0x03ff}, {0.0f, 0x0000},  {-0.0f, 0x8000},    {inf, 0x7c00},
        {-inf, 0xfc00},     {0.333251953125f, 0x3555}, {-1.5f, 0xbe00},
    };
    std::vector<float> values;
    for (auto & c : cases) values.push_back(c.first);
    std::vector<SafetensorsTensorToWrite> tensors = {
        {"h", SafetensorsDtype::F16, {static_cast<int64_t>(values.size())}, values}};
    write_safetensors(dir.file("h.safetensors"), tensors);

    SafetensorsFile f = open_safetensors(dir.file("h.safetensors"));
    const SafetensorsTensor * t = f.contents.find("h");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->dtype, SafetensorsDtype::F16);
    ASSERT_EQ(t->data.size(), 2 * cases.size());
    for (size_t i = 0; i < cases.size(); ++i) {
        uint16_t stored = static_cast<uint16_t>(t->data[2 * i] | (t->data[2 * i + 1] << 8));
        EXPECT_EQ(stored, cases[i].second) << "value " << cases[i].first;
    }
    EXPECT_FALSE(tensor_f32_view(*t).has_value());
    std::vector<float> storage;
    std::span<const float> back = tensor_as_f32(*t, f.contents.source, storage);
    EXPECT_EQ(back.data(), storage.data());
    ASSERT_EQ(back.size(), cases.size());
    for (size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(bits_of(back[i]), bits_of(cases[i].first)) << i;
}

TEST(Safetensors, RoundTripBF16StoresKnownBitPatterns) {
    ScratchDir dir;
    const float inf = std::numeric_limits<float>::infinity();
    std::vector<std::pair<float, uint16_t>> cases = {
        {1.0f, 0x3f80},  {-2.0f, 0xc000},     {0.5f, 0x3f00},
        {0.0f, 0x0000},  {-0.0f, 0x8000},     {inf, 0x7f80},
        {-inf, 0xff80},  {3.140625f, 0x4049}, {0x1p-133f /* subnormal */, 0x0001},
        {-1.5f, 0xbfc0},
    };
    std::vector<float> values;
    for (auto & c : cases) values.push_back(c.first);
    std::vector<SafetensorsTensorToWrite> tensors = {
        {"b", SafetensorsDtype::BF16, {static_cast<int64_t>(values.size())}, values}};
    write_safetensors(dir.file("b.safetensors"), tensors);

    SafetensorsFile f = open_safetensors(dir.file("b.safetensors"));
    const SafetensorsTensor * t = f.contents.find("b");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->dtype, SafetensorsDtype::BF16);
    for (size_t i = 0; i < cases.size(); ++i) {
        uint16_t stored = static_cast<uint16_t>(t->data[2 * i] | (t->data[2 * i + 1] << 8));
        EXPECT_EQ(stored, cases[i].second) << "value " << cases[i].first;
    }
    std::vector<float> back = tensor_to_f32(*t, f.contents.source);
    for (size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(bits_of(back[i]), bits_of(cases[i].first)) << i;
}

// ---- conversions -----------------------------------------------------------------------------

TEST(Safetensors, F16ToF32DecodesSubnormalsInfinitiesAndNan) {
    EXPECT_EQ(f16_to_f32(0x0001), 0x1p-24f); // smallest subnormal
    EXPECT_EQ(f16_to_f32(0x8001), -0x1p-24f);
    EXPECT_EQ(f16_to_f32(0x0200), 0x1p-15f);        // a subnormal with one bit
    EXPECT_EQ(f16_to_f32(0x03ff), 1023 * 0x1p-24f); // largest subnormal
    EXPECT_EQ(f16_to_f32(0x0400), 0x1p-14f);        // smallest normal
    EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
    EXPECT_EQ(f16_to_f32(0x3c01), 1.0f + 0x1p-10f);
    EXPECT_EQ(bits_of(f16_to_f32(0x8000)), 0x80000000u);
    EXPECT_EQ(f16_to_f32(0x7c00), std::numeric_limits<float>::infinity());
    EXPECT_EQ(f16_to_f32(0xfc00), -std::numeric_limits<float>::infinity());
    EXPECT_EQ(bits_of(f16_to_f32(0x7e00)), 0x7fc00000u); // quiet NaN
    EXPECT_EQ(bits_of(f16_to_f32(0x7c01)), 0x7f802000u); // signalling NaN, payload kept
}

TEST(Safetensors, F16RoundTripsEveryBitPattern) {
    for (uint32_t h = 0; h <= 0xffff; ++h) {
        float f = f16_to_f32(static_cast<uint16_t>(h));
        uint16_t back = f32_to_f16(f);
        if (std::isnan(f)) {
            EXPECT_TRUE(std::isnan(f16_to_f32(back))) << std::hex << h;
            EXPECT_EQ(back & 0x8000, h & 0x8000) << std::hex << h;
        } else {
            ASSERT_EQ(back, h) << std::hex << h;
        }
    }
}

TEST(Safetensors, F32ToF16RoundsToNearestEven) {
    EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f), 0x3c00);            // tie, to even (down)
    EXPECT_EQ(f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);        // tie, to even (up)
    EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01); // above the tie
    EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
    EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00); // rounds to infinity
    EXPECT_EQ(f32_to_f16(-1e10f), 0xfc00);
    EXPECT_EQ(f32_to_f16(0x1p-25f), 0x0000); // tie between 0 and the smallest subnormal
    EXPECT_EQ(f32_to_f16(0x1p-25f * 1.5f), 0x0001);
    EXPECT_EQ(f32_to_f16(3 * 0x1p-25f), 0x0002); // tie between subnormals 1 and 2, to even
    EXPECT_EQ(f32_to_f16(0x1p-30f), 0x0000);
    EXPECT_EQ(f32_to_f16(-0x1p-30f), 0x8000);
    EXPECT_EQ(f32_to_f16(0x1p-14f - 0x1p-26f), 0x0400); // rounds up into the normals
    EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::numeric_limits<float>::quiet_NaN()))));
    EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::bit_cast<float>(0x7f800001u))))); // tiny payload
}

TEST(Safetensors, F32ToBF16RoundsToNearestEven) {
    EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);     // tie, to even (down)
    EXPECT_EQ(f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82); // tie, to even (up)
    EXPECT_EQ(f32_to_bf16(3.14159265f), 0x4049);
    EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80); // overflows to infinity
    EXPECT_EQ(bf16_to_f32(0x4049), 3.140625f);
    EXPECT_EQ(bits_of(bf16_to_f32(0x0001)), 0x00010000u);
    EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::bit_cast<float>(0x7f800001u)))));
    EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(-std::numeric_limits<float>::quiet_NaN()))));
    for (uint32_t b = 0; b <= 0xffff; ++b) {
        float f = bf16_to_f32(static_cast<uint16_t>(b));
        if (!std::isnan(f)) {
            ASSERT_EQ(f32_to_bf16(f), b) << std::hex << b;
        }
    }
}

// ---- files made by hand (independent of the writer) ------------------------------------------

TEST(Safetensors, ParsesHandMadeFileFromSpan) {
    std::string header = R"({"__metadata__":{"format":"pt"},)"
                         R"("b":{"dtype":"BF16","shape":[],"data_offsets":[4,6]},)"
                         R"("a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})";
    std::string data = std::string("\x00\x3c\x01\x80", 4) + std::string("\xc0\x3f", 2); // 1.0, -2^-24 | 1.5
    std::vector<uint8_t> bytes = as_bytes(raw_safetensors(header, data));
    Safetensors st = parse_safetensors(bytes, "mem");
    EXPECT_EQ(st.metadata.at("format"), "pt");
    ASSERT_NE(st.find("a"), nullptr);
    EXPECT_EQ(tensor_to_f32(*st.find("a"), "mem"), (std::vector<float>{1.0f, -0x1p-24f}));
    EXPECT_EQ(tensor_to_f32(*st.find("b"), "mem"), std::vector<float>{1.5f});
    EXPECT_EQ(st.find("a")->data.data(), bytes.data() + 8 + header.size());
}

TEST(Safetensors, UnalignedF32IsCopiedNotViewed) {
    // Header of 5 bytes past a multiple of 4: the data buffer starts off a 4-byte boundary.
    std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    while ((8 + header.size()) % 4 != 1) header += ' ';
    float values[2] = {1.5f, -7.0f};
    std::string data(reinterpret_cast<const char *>(values), 8);
    std::vector<uint8_t> bytes = as_bytes(raw_safetensors(header, data));
    // std::vector storage is suitably aligned for any scalar, so the offset decides alignment.
    Safetensors st = parse_safetensors(bytes, "mem");
    const SafetensorsTensor & t = *st.find("x");
    EXPECT_FALSE(tensor_f32_view(t).has_value());
    std::vector<float> storage;
    std::span<const float> got = tensor_as_f32(t, "mem", storage);
    EXPECT_EQ(got.data(), storage.data());
    EXPECT_EQ(std::vector<float>(got.begin(), got.end()), (std::vector<float>{1.5f, -7.0f}));
}

TEST(Safetensors, EmptyTensorsAndGapsAreAccepted) {
    std::string header = R"({"e":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},)"
                         R"("x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                         R"("y":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
    std::vector<uint8_t> bytes = as_bytes(raw_safetensors(header, std::string(12, '\0')));
    Safetensors st = parse_safetensors(bytes, "mem");
    EXPECT_EQ(st.find("e")->numel, 0u);
    EXPECT_TRUE(tensor_to_f32(*st.find("e"), "mem").empty());
    EXPECT_EQ(st.tensors.size(), 3u);
}

TEST(Safetensors, OtherDtypesParseButDoNotConvert) {
    std::string header = R"({"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})";
    std::vector<uint8_t> bytes = as_bytes(raw_safetensors(header, std::string(16, '\0')));
    Safetensors st = parse_safetensors(bytes, "ids.safetensors");
    EXPECT_EQ(st.find("ids")->dtype, SafetensorsDtype::I64);
    EXPECT_FALSE(tensor_f32_view(*st.find("ids")).has_value());
    expect_error([&] { tensor_to_f32(*st.find("ids"), st.source); },
                 {"ids.safetensors", "'ids'", "dtype I64, unsupported"});
}

TEST(Safetensors, DtypeNamesAndSizes) {
    EXPECT_EQ(parse_safetensors_dtype("BF16"), SafetensorsDtype::BF16);
    EXPECT_EQ(parse_safetensors_dtype("f32"), std::nullopt);
    EXPECT_EQ(safetensors_dtype_name(SafetensorsDtype::F8_E4M3), "F8_E4M3");
    EXPECT_EQ(safetensors_dtype_size(SafetensorsDtype::F64), 8u);
    EXPECT_EQ(safetensors_dtype_size(SafetensorsDtype::F16), 2u);
    EXPECT_EQ(safetensors_dtype_size(SafetensorsDtype::BOOL), 1u);
}

TEST(Safetensors, ReadsFilesWrittenByAnIndependentWriter) {
    // The fuzz seeds were written by a few lines of Python (struct + json), not by our writer.
    const std::string dir = std::string(FHEGPT_SOURCE_DIR) + "/fuzz/corpus/fuzz-safetensors/";
    SafetensorsFile f32 = open_safetensors(dir + "f32.safetensors");
    EXPECT_EQ(f32.contents.metadata.at("format"), "pt");
    EXPECT_EQ(tensor_to_f32(*f32.contents.find("a"), "f32"), (std::vector<float>{1, 2, 3, 4}));
    EXPECT_TRUE(tensor_f32_view(*f32.contents.find("a")).has_value());
    SafetensorsFile f16 = open_safetensors(dir + "f16.safetensors");
    EXPECT_EQ(tensor_to_f32(*f16.contents.find("h"), "f16"), (std::vector<float>{1, -2, 0x1p-24f, 65504}));
    SafetensorsFile bf16 = open_safetensors(dir + "bf16.safetensors");
    EXPECT_EQ(tensor_to_f32(*bf16.contents.find("b"), "bf16"), (std::vector<float>{1, 3.140625f, -0.5f}));
    SafetensorsFile tiny = open_safetensors(dir + "tiny-gpt2.safetensors");
    EXPECT_EQ(tiny.contents.tensors.size(), 2u + 12u + 1u + 2u);
    EXPECT_EQ(tiny.contents.find("h.0.attn.c_attn.weight")->shape, (std::vector<int64_t>{4, 12}));
}

// ---- malformed files: one test per problem ---------------------------------------------------

TEST(SafetensorsMalformed, MissingFile) {
    ScratchDir dir;
    expect_error([&] { open_safetensors(dir.file("nope.safetensors")); },
                 {dir.file("nope.safetensors"), "cannot open"});
}

TEST(SafetensorsMalformed, EmptyFile) {
    ScratchDir dir;
    expect_error([&] { write_and_open(dir, ""); }, {dir.file("t.safetensors"), "file is 0 bytes, shorter than"});
}

TEST(SafetensorsMalformed, ShorterThanLengthField) {
    ScratchDir dir;
    expect_error([&] { write_and_open(dir, std::string("\x10\x00\x00", 3)); },
                 {dir.file("t.safetensors"), "file is 3 bytes"});
}

TEST(SafetensorsMalformed, HeaderLengthPastEndOfFile) {
    ScratchDir dir;
    std::string header = R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
    std::string bytes = u64_le(header.size() + 100) + header + "abcd";
    expect_error(
        [&] { write_and_open(dir, bytes); },
        {dir.file("t.safetensors"), "header length " + std::to_string(header.size() + 100) + " past end of file"});
}

TEST(SafetensorsMalformed, HeaderLengthAbsurd) {
    ScratchDir dir;
    expect_error([&] { write_and_open(dir, u64_le(uint64_t{1} << 62) + "{}"); },
                 {dir.file("t.safetensors"), "header length 4611686018427387904 exceeds the limit"});
    expect_error([&] { write_and_open(dir, u64_le(~uint64_t{0}) + "{}"); }, {"exceeds the limit"});
}

TEST(SafetensorsMalformed, TruncatedData) {
    ScratchDir dir;
    std::vector<float> v(16, 1.0f);
    std::vector<SafetensorsTensorToWrite> tensors = {{"w", SafetensorsDtype::F32, {4, 4}, v}};
    write_safetensors(dir.file("full.safetensors"), tensors);
    std::string full;
    {
        std::ifstream in(dir.file("full.safetensors"), std::ios::binary);
        full.assign(std::istreambuf_iterator<char>(in), {});
    }
    expect_error(
        [&] { write_and_open(dir, full.substr(0, full.size() - 10)); },
        {dir.file("t.safetensors"), "tensor 'w'", "data_offsets [0, 64] out of range", "holds 54 bytes", "truncated"});
}

TEST(SafetensorsMalformed, OffsetsOutOfRange) {
    ScratchDir dir;
    std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[100,108]}})";
    expect_error([&] { write_and_open(dir, raw_safetensors(header, std::string(8, '\0'))); },
                 {dir.file("t.safetensors"), "'x'", "[100, 108] out of range", "holds 8 bytes"});
}

TEST(SafetensorsMalformed, OffsetsReversed) {
    ScratchDir dir;
    std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})";
    expect_error([&] { write_and_open(dir, raw_safetensors(header, std::string(8, '\0'))); },
                 {dir.file("t.safetensors"), "'x'", "[8, 0] are reversed"});
}

TEST(SafetensorsMalformed, OffsetsOverlap) {
    ScratchDir dir;
    std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
    expect_error([&] { write_and_open(dir, raw_safetensors(header, std::string(12, '\0'))); },
                 {dir.file("t.safetensors"), "tensors 'a' [0, 8] and 'b' [4, 12] overlap"});
}

TEST(SafetensorsMalformed, OffsetsNegative) {
    ScratchDir dir;
    std::string header = R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})";
    expect_error([&] { write_and_open(dir, raw_safetensors(header, "")); },
                 {dir.file("t.safetensors"), "'x'", "data_offsets entry -4 is negative"});
}

TEST(SafetensorsMalformed, ByteCountDoesNotMatchShapeAndDtype) {
    ScratchDir dir;
    std::string header = R"({"x":{"dtype":"F16","shape":[3,2],"data_offsets":[0,8]}})";
    expect_error([&] { write_and_open(dir, raw_safetensors(header, std::string(8, '\0'))); },
                 {dir.file("t.safetensors"), "'x'", "hold 8 bytes, but dtype F16 and shape [3, 2] need 6 x 2 bytes"});
}

TEST(SafetensorsMalformed, UnknownDtype) {
    ScratchDir dir;
    std::string header = R"({"x":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}})";
    expect_error([&] { write_and_open(dir, raw_safetensors(header, std::string(4, '\0'))); },
                 {dir.file("t.safetensors"), "'x'", "unknown dtype 'F31'"});
}

TEST(SafetensorsMalformed, DtypeNotAString) {
    ScratchDir dir;
    std::string header = R"({"x":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})";
    expect_error([&] { write_and_open(dir, raw_safetensors(header, std::string(4, '\0'))); },
                 {dir.file("t.safetensors"), "'x'", "\"dtype\" must be a string, got number"});
}

TEST(SafetensorsMalformed, MissingField) {
    ScratchDir dir;
    std::string header = R"({"x":{"dtype":"F32","shape":[1]}})";
    expect_error([&] { write_and_open(dir, raw_safetensors(header, std::string(4, '\0'))); },
                 {dir.file("t.safetensors"), "'x'", "missing \"data_offsets\""});
}

TEST(SafetensorsMalformed, EntryNotAnObject) {
    ScratchDir dir;
    expect_error([&] { write_and_open(dir, raw_safetensors(R"({"x":[1,2]})", "")); },
                 {dir.file("t.safetensors"), "'x'", "entry must be an object, got array"});
}

TEST(SafetensorsMalformed, NegativeShape) {
    ScratchDir dir;
    std::string header = R"({"x":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,0]}})";
    expect_error([&] { write_and_open(dir, raw_safetensors(header, "")); },
                 {dir.file("t.safetensors"), "'x'", "shape entry -1 is negative"});
}

TEST(SafetensorsMalformed, NonIntegerShape) {
    ScratchDir dir;
    std::string header = R"({"x":{"dtype":"F32","shape":[2.5],"data_offsets":[0,0]}})";
    expect_error([&] { write_and_open(dir, raw_safetensors(header, "")); },
                 {dir.file("t.safetensors"), "'x'", "shape entries must be integers"});
}

TEST(SafetensorsMalformed, ShapeProductOverflows) {
    ScratchDir dir;
    std::string header = R"({"x":{"dtype":"F32","shape":[4294967296,4294967296,2],"data_offsets":[0,0]}})";
    expect_error([&] { write_and_open(dir, raw_safetensors(header, "")); },
                 {dir.file("t.safetensors"), "'x'", "overflows 64 bits"});
}

TEST(SafetensorsMalformed, ByteCountOverflows) {
    ScratchDir dir;
    // numel fits in 64 bits, numel * 4 does not.
    std::string header = R"({"x":{"dtype":"F32","shape":[4611686018427387905],"data_offsets":[0,4]}})";
    expect_error([&] { write_and_open(dir, raw_safetensors(header, std::string(4, '\0'))); },
                 {dir.file("t.safetensors"), "'x'", "need 4611686018427387905 x 4 bytes"});
}

TEST(SafetensorsMalformed, TooManyDimensions) {
    ScratchDir dir;
    std::string shape = "[1";
    for (int i = 0; i < 40; ++i) shape += ",1";
    std::string header = R"({"x":{"dtype":"F32","shape":)" + shape + R"(],"data_offsets":[0,4]}})";
    expect_error([&] { write_and_open(dir, raw_safetensors(header, std::string(4, '\0'))); },
                 {dir.file("t.safetensors"), "'x'", "shape has 41 dimensions"});
}

TEST(SafetensorsMalformed, BadJson) {
    ScratchDir dir;
    expect_error([&] { write_and_open(dir, raw_safetensors(R"({"x": {"dtype": "F32",)", "")); },
                 {dir.file("t.safetensors"), "bad JSON in header", "parse error"});
}

TEST(SafetensorsMalformed, HeaderNotAnObject) {
    ScratchDir dir;
    expect_error([&] { write_and_open(dir, raw_safetensors("[1, 2]", "")); },
                 {dir.file("t.safetensors"), "header is not a JSON object but array"});
}

TEST(SafetensorsMalformed, DuplicateTensorName) {
    ScratchDir dir;
    std::string header = R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                         R"("x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
    expect_error([&] { write_and_open(dir, raw_safetensors(header, std::string(8, '\0'))); },
                 {dir.file("t.safetensors"), "duplicate tensor name 'x'"});
}

TEST(SafetensorsMalformed, DuplicateFieldInEntry) {
    ScratchDir dir;
    std::string header = R"({"x":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}})";
    expect_error([&] { write_and_open(dir, raw_safetensors(header, std::string(4, '\0'))); },
                 {dir.file("t.safetensors"), "duplicate key 'dtype'"});
}

TEST(SafetensorsMalformed, NestedTooDeep) {
    ScratchDir dir;
    std::string header = R"({"__metadata__":)" + std::string(100, '[') + std::string(100, ']') + "}";
    expect_error([&] { write_and_open(dir, raw_safetensors(header, "")); },
                 {dir.file("t.safetensors"), "nested deeper than 32 levels"});
}

TEST(SafetensorsMalformed, MetadataValueNotAString) {
    ScratchDir dir;
    expect_error([&] { write_and_open(dir, raw_safetensors(R"({"__metadata__":{"format":1}})", "")); },
                 {dir.file("t.safetensors"), "\"__metadata__\" value of 'format' must be a string"});
}

TEST(SafetensorsMalformed, FromSpanNamesTheSource) {
    std::vector<uint8_t> bytes = as_bytes(u64_le(3) + "{}");
    expect_error([&] { parse_safetensors(bytes, "buffer-7"); }, {"buffer-7: header length 3 past end of file"});
}

// ---- writer errors ---------------------------------------------------------------------------

TEST(SafetensorsWriter, RejectsValueCountNotMatchingShape) {
    ScratchDir dir;
    std::vector<float> v(5);
    std::vector<SafetensorsTensorToWrite> tensors = {{"w", SafetensorsDtype::F32, {2, 3}, v}};
    expect_error([&] { write_safetensors(dir.file("w.safetensors"), tensors); },
                 {dir.file("w.safetensors"), "'w'", "shape has 6 elements, 5 values given"});
}

TEST(SafetensorsWriter, RejectsDuplicateNamesAndOtherDtypes) {
    ScratchDir dir;
    std::vector<float> v(1);
    std::vector<SafetensorsTensorToWrite> twice = {{"w", SafetensorsDtype::F32, {1}, v},
                                                   {"w", SafetensorsDtype::F16, {1}, v}};
    expect_error([&] { write_safetensors(dir.file("w.safetensors"), twice); }, {"duplicate tensor name 'w'"});
    std::vector<SafetensorsTensorToWrite> ints = {{"i", SafetensorsDtype::I32, {1}, v}};
    expect_error([&] { write_safetensors(dir.file("w.safetensors"), ints); }, {"cannot write dtype I32"});
    expect_error([&] { write_safetensors(dir.path() + "/no/such/dir/w.safetensors", ints); }, {"cannot write dtype"});
    std::vector<SafetensorsTensorToWrite> fine = {{"f", SafetensorsDtype::F32, {1}, v}};
    expect_error([&] { write_safetensors(dir.path() + "/no/such/dir/w.safetensors", fine); },
                 {dir.path() + "/no/such/dir/w.safetensors", "cannot create"});
}

} // namespace
} // namespace fhegpt::model
