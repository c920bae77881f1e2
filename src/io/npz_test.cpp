// .npz tests: numpy-written archives (tests/fixtures/npz, tools/make_npz_fixtures.py) of every
// integer/float dtype, stored and deflated, big-endian, read back exactly; our writer's archives
// read back (stored and compressed, unicode and bool members); hostile files (truncated zip,
// pickle, object array, shapes far beyond the data, byte-size overflow, corrupted CRC) give
// polymoe::Error naming the file and key.
#include "io/npz.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/io_test_util.h"

namespace polymoe::io {
namespace {

using testing_util::read_bytes;
using testing_util::TempDir;
using testing_util::throws_error_with;
using testing_util::write_bytes;

const std::string kDir = std::string(POLYMOE_SOURCE_DIR) + "/tests/fixtures/npz/";

nlohmann::json expected() {
    std::ifstream f(kDir + "expected.json");
    return nlohmann::json::parse(f);
}

TEST(Npz, NumpyWrittenTablesOfEveryDtypeLoad) {
    const auto want = expected();
    int files = 0;
    for (std::string dtype : {"uint8", "int16", "int32", "int64", "float32", "float64"}) {
        for (std::string kind : {"stored", "compressed"}) {
            const std::string path = kDir + "table_" + dtype + "_" + kind + ".npz";
            SCOPED_TRACE(path);
            const NpzReader z = NpzReader::open(path);
            EXPECT_TRUE(z.has("lang") && z.has("topk_ids") && z.has("unrelated_extra"));
            const NpyArray ids = z.read("topk_ids");
            ASSERT_EQ(ids.shape, (std::vector<int64_t>{12, 2, 2}));
            for (int64_t i = 0; i < 48; ++i)
                EXPECT_EQ(ids.get_int(i), want["topk_ids"][i / 4][i / 2 % 2][i % 2].get<int>());
            const NpyArray w = z.read("topk_weights");
            for (int64_t i = 0; i < 48; ++i)
                EXPECT_EQ(w.get_double(i),
                          want["topk_weights"][i / 4][i / 2 % 2][i % 2].get<double>());
            const NpyArray names = z.read("lang_names");
            ASSERT_TRUE(names.is_unicode());
            EXPECT_EQ(names.get_string(0), "spa");
            EXPECT_EQ(names.get_string(1), "glg");
            const NpyArray ranked = z.read("rank_ordered");
            EXPECT_EQ(ranked.descr, "|b1");
            EXPECT_TRUE(ranked.shape.empty());
            EXPECT_EQ(ranked.get_int(0), 1);
            EXPECT_EQ(z.header("lang").shape, (std::vector<int64_t>{12}));
            ++files;
        }
    }
    EXPECT_EQ(files, 12);
}

TEST(Npz, BigEndianMembersAreSwapped) {
    const auto want = expected();
    const NpzReader z = NpzReader::open(kDir + "table_bigendian.npz");
    const NpyArray ids = z.read("topk_ids");
    EXPECT_EQ(ids.descr, "<i4");
    for (int64_t i = 0; i < 48; ++i)
        EXPECT_EQ(ids.get_int(i), want["topk_ids"][i / 4][i / 2 % 2][i % 2].get<int>());
    const NpyArray w = z.read("topk_weights");
    EXPECT_EQ(w.descr, "<f8");
    EXPECT_EQ(w.get_double(5), want["topk_weights"][1][0][1].get<double>());
}

TEST(Npz, WriterRoundTripStoredAndCompressed) {
    TempDir dir;
    for (bool compress : {false, true}) {
        const std::string path = dir.path(compress ? "c.npz" : "s.npz");
        std::vector<int32_t> a(1000);
        for (int i = 0; i < 1000; ++i)
            a[static_cast<size_t>(i)] = i * 7 - 300;
        const UnicodeArray names = make_unicode_array({"spa", "glg", "\xc3\xa9t\xc3\xa9", ""});
        {
            NpzWriter w(path, compress);
            // Streamed in uneven pieces.
            w.begin("a", "<i4", {10, 100});
            w.write(a.data(), 1234);
            w.write(reinterpret_cast<const uint8_t*>(a.data()) + 1234, 4000 - 1234);
            w.end();
            w.add("names", names.descr, {4}, names.data.data());
            const uint8_t t = 1;
            w.add("flag", "|b1", {}, &t);
            w.finish();
        }
        EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
        const NpzReader z = NpzReader::open(path);
        EXPECT_EQ(z.keys(), (std::vector<std::string>{"a", "flag", "names"}));
        const NpyArray got = z.read("a");
        EXPECT_EQ(got.shape, (std::vector<int64_t>{10, 100}));
        for (int64_t i = 0; i < 1000; ++i)
            ASSERT_EQ(got.get_int(i), a[static_cast<size_t>(i)]);
        const NpyArray n = z.read("names");
        EXPECT_EQ(n.descr, "<U3");
        EXPECT_EQ(n.get_string(2), "\xc3\xa9t\xc3\xa9");
        EXPECT_EQ(n.get_string(3), "");
        EXPECT_EQ(z.read("flag").get_int(0), 1);
    }
}

TEST(Npz, HostileFilesGiveCleanErrors) {
    const std::string t = kDir + "bad_truncated.npz";
    EXPECT_TRUE(throws_error_with([&] { NpzReader::open(t); }, {t, "zip"}));
    const std::string p = kDir + "bad_pickle.npz";
    EXPECT_TRUE(throws_error_with([&] { NpzReader::open(p); }, {p, "zip"}));
    const std::string o = kDir + "bad_object_array.npz";
    EXPECT_TRUE(throws_error_with([&] { NpzReader::open(o).read("lang"); }, {o, "lang", "object"}));
    const std::string h = kDir + "bad_huge_shape.npz";
    EXPECT_TRUE(throws_error_with([&] { NpzReader::open(h).read("topk_ids"); },
                                  {h, "topk_ids", "1099511627776"}));
    const std::string v = kDir + "bad_overflow_shape.npz";
    EXPECT_TRUE(throws_error_with([&] { NpzReader::open(v).read("topk_ids"); },
                                  {v, "topk_ids", "overflow"}));
    const std::string c = kDir + "bad_complex_ids.npz";
    EXPECT_TRUE(
        throws_error_with([&] { NpzReader::open(c).read("topk_ids"); }, {c, "topk_ids", "c8"}));
    EXPECT_TRUE(throws_error_with([&] { NpzReader::open(c).read("nope"); }, {c, "nope", "lang"}));
}

TEST(Npz, CorruptMemberDataIsDetected) {
    TempDir dir;
    for (std::string kind : {"stored", "compressed"}) {
        std::string bytes = read_bytes(kDir + "table_int64_" + kind + ".npz");
        // Flip one byte inside topk_ids' data: past its local header (30 bytes, the name, a
        // 20-byte zip64 extra) and, when stored, its 128-byte .npy header.
        const size_t at = bytes.find("topk_ids.npy") + 12 + 20 + (kind == "stored" ? 150 : 40);
        bytes[at] = static_cast<char>(bytes[at] ^ 0x5a);
        const std::string path = dir.path(kind + ".npz");
        write_bytes(path, bytes);
        const NpzReader z = NpzReader::open(path);
        bool failed = false;
        for (const auto& k : z.keys()) {
            try {
                z.read(k);
            } catch (const Error& e) {
                failed = true;
                EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
            }
        }
        EXPECT_TRUE(failed) << kind;
    }
}

}  // namespace
}  // namespace polymoe::io
