// Renders the fixture report in headless Chromium (Debian's `chromium`): the page must load
// without console or network errors with every figure in the DOM, and screenshots of the page
// and of each standalone SVG must be non-empty pictures (enough non-white pixels and distinct
// colours), checked by decoding the PNG here with zlib. Registered only when CMake found a
// Chromium binary (POLYMOE_CHROMIUM); scripts/install_deps.sh installs one.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "report/report.h"

namespace polymoe::report {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = fs::path(POLYMOE_SOURCE_DIR) / "tests/fixtures/report";

struct Image {
    int width = 0, height = 0;
    std::vector<std::array<uint8_t, 3>> rgb;
};

uint32_t be32(const uint8_t* p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Decodes an 8-bit RGB or RGBA non-interlaced PNG (what Chromium writes); fails the test on
// anything else.
Image decode_png(const std::string& bytes) {
    Image img;
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    static const uint8_t kSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (bytes.size() < 8 || std::memcmp(p, kSig, 8) != 0) {
        ADD_FAILURE() << "not a PNG";
        return img;
    }
    std::string idat;
    int depth = 0, color = 0, interlace = 0;
    for (size_t at = 8; at + 12 <= bytes.size();) {
        const uint32_t len = be32(p + at);
        const std::string type(bytes.data() + at + 4, 4);
        const uint8_t* data = p + at + 8;
        if (at + 12 + len > bytes.size()) break;
        if (type == "IHDR") {
            img.width = static_cast<int>(be32(data));
            img.height = static_cast<int>(be32(data + 4));
            depth = data[8];
            color = data[9];
            interlace = data[12];
        } else if (type == "IDAT") {
            idat.append(reinterpret_cast<const char*>(data), len);
        }
        at += 12 + len;
    }
    const int channels = color == 6 ? 4 : color == 2 ? 3 : 0;
    if (depth != 8 || channels == 0 || interlace != 0) {
        ADD_FAILURE() << "unsupported PNG: depth " << depth << " colour type " << color;
        return img;
    }
    const size_t stride = static_cast<size_t>(img.width) * channels;
    std::vector<uint8_t> raw((stride + 1) * img.height);
    uLongf raw_len = raw.size();
    if (uncompress(raw.data(), &raw_len, reinterpret_cast<const Bytef*>(idat.data()),
                   idat.size()) != Z_OK ||
        raw_len != raw.size()) {
        ADD_FAILURE() << "PNG image data does not inflate to " << raw.size() << " bytes";
        return img;
    }
    // Undo the per-row filters (PNG specification, section 9).
    std::vector<uint8_t> cur(stride), prev(stride, 0);
    img.rgb.reserve(static_cast<size_t>(img.width) * img.height);
    for (int y = 0; y < img.height; ++y) {
        const uint8_t f = raw[y * (stride + 1)];
        const uint8_t* in = &raw[y * (stride + 1) + 1];
        for (size_t i = 0; i < stride; ++i) {
            const int a = i >= static_cast<size_t>(channels) ? cur[i - channels] : 0;
            const int b = prev[i];
            const int c = i >= static_cast<size_t>(channels) ? prev[i - channels] : 0;
            int pred = 0;
            switch (f) {
                case 0:
                    pred = 0;
                    break;
                case 1:
                    pred = a;
                    break;
                case 2:
                    pred = b;
                    break;
                case 3:
                    pred = (a + b) / 2;
                    break;
                case 4: {
                    const int pp = a + b - c, pa = std::abs(pp - a), pb = std::abs(pp - b),
                              pc = std::abs(pp - c);
                    pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
                    break;
                }
                default:
                    ADD_FAILURE() << "bad PNG filter " << int{f};
                    return img;
            }
            cur[i] = static_cast<uint8_t>(in[i] + pred);
        }
        for (int x = 0; x < img.width; ++x)
            img.rgb.push_back({cur[x * channels], cur[x * channels + 1], cur[x * channels + 2]});
        std::swap(cur, prev);
    }
    return img;
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

// Integer part of a numeric attribute of the root <svg> element (0 if absent).
int svg_attribute(const std::string& svg, const std::string& name) {
    const size_t open = svg.find("<svg ");
    const size_t at = svg.find(" " + name + "=\"", open);
    if (open == std::string::npos || at == std::string::npos) return 0;
    return static_cast<int>(std::stod(svg.substr(at + name.size() + 3)));
}

struct ChromiumRun {
    int status = -1;
    std::string out, err;
};

ChromiumRun chromium(const std::string& args, const fs::path& dir) {
    const fs::path out = dir / "chromium.out", err = dir / "chromium.err";
    // --no-sandbox: CI runs as root; a fresh profile directory keeps runs independent.
    const std::string cmd = std::string("timeout 120 ") + POLYMOE_CHROMIUM +
                            " --headless --no-sandbox --disable-gpu --hide-scrollbars "
                            "--no-first-run --user-data-dir=" +
                            (dir / "profile").string() + " " + args + " >" + out.string() + " 2>" +
                            err.string();
    ChromiumRun r;
    r.status = std::system(cmd.c_str());
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

// Share of pixels that are not (near) white, and the number of distinct colours.
std::pair<double, size_t> ink(const Image& img) {
    size_t inked = 0;
    std::set<uint32_t> colours;
    for (const auto& p : img.rgb) {
        if (p[0] < 235 || p[1] < 235 || p[2] < 235) ++inked;
        colours.insert((uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2]);
    }
    return {img.rgb.empty() ? 0.0 : static_cast<double>(inked) / img.rgb.size(), colours.size()};
}

class RenderTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        // One directory per process: CTest runs these tests as parallel processes, and each
        // Chromium needs its own profile directory.
        dir_ = fs::path(testing::TempDir()) / ("report_render_" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        ReportInputs in;
        in.analysis = load_input(kFixtures / "analysis.json", "polymoe.analysis");
        in.eval = load_input(kFixtures / "eval.json", "polymoe.eval");
        in.interventions = load_input(kFixtures / "interventions.json", "polymoe.interventions");
        report_ = new RenderedReport(render_report(in));
        write_report(*report_, dir_ / "out");
    }
    static void TearDownTestSuite() {
        delete report_;
        fs::remove_all(dir_);
    }
    static fs::path dir_;
    static RenderedReport* report_;
};

fs::path RenderTest::dir_;
RenderedReport* RenderTest::report_ = nullptr;

TEST_F(RenderTest, PageLoadsWithoutErrorsAndHasEveryFigure) {
    const fs::path html = dir_ / "out" / "report.html";
    const ChromiumRun r =
        chromium("--enable-logging=stderr --v=0 --dump-dom file://" + html.string(), dir_);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("</html>"), std::string::npos);
    size_t svgs = 0;
    for (size_t at = r.out.find("<svg"); at != std::string::npos; at = r.out.find("<svg", at + 1))
        ++svgs;
    EXPECT_EQ(svgs, report_->figures.size());
    for (const auto& f : report_->figures)
        EXPECT_NE(r.out.find("id=\"" + f.name + "\""), std::string::npos) << f.name;
    for (const char* bad : {"Uncaught", "net::ERR_", "Failed to load", "CONSOLE"})
        EXPECT_EQ(r.err.find(bad), std::string::npos) << bad << " in:\n" << r.err;
}

TEST_F(RenderTest, ScreenshotsAreNonEmptyPictures) {
    // The top of the page: title, findings and Figure 1.
    const fs::path page = dir_ / "page.png";
    ChromiumRun r = chromium("--window-size=1400,2400 --screenshot=" + page.string() + " file://" +
                                 (dir_ / "out" / "report.html").string(),
                             dir_);
    ASSERT_EQ(r.status, 0) << r.err;
    const Image img = decode_png(slurp(page));
    EXPECT_EQ(img.width, 1400);
    const auto [share, colours] = ink(img);
    EXPECT_GT(share, 0.05) << "page looks blank";
    EXPECT_GT(colours, 100u);
    // Every standalone figure at its own size.
    for (const auto& fig : report_->figures) {
        const fs::path svg = dir_ / "out" / "figures" / fig.name;
        const fs::path png = dir_ / (fig.name + ".png");
        // The window is the figure's own size (its width and height attributes).
        const std::string size = std::to_string(svg_attribute(fig.text, "width") + 1) + "," +
                                 std::to_string(svg_attribute(fig.text, "height") + 1);
        r = chromium(
            "--window-size=" + size + " --screenshot=" + png.string() + " file://" + svg.string(),
            dir_);
        ASSERT_EQ(r.status, 0) << fig.name << ": " << r.err;
        const auto [fs_share, fs_colours] = ink(decode_png(slurp(png)));
        EXPECT_GT(fs_share, 0.02) << fig.name << " looks blank";
        EXPECT_GT(fs_colours, 8u) << fig.name;
    }
}

TEST_F(RenderTest, BlankFigureFailsTheInkCheck) {
    // Negative control: an SVG with nothing drawn renders to a picture the check calls blank.
    const fs::path svg = dir_ / "blank.svg", png = dir_ / "blank.png";
    std::ofstream(svg) << R"(<svg xmlns="http://www.w3.org/2000/svg" width="300" height="200">)"
                       << R"(<rect width="100%" height="100%" fill="#fff"/></svg>)";
    const ChromiumRun r = chromium(
        "--window-size=300,200 --screenshot=" + png.string() + " file://" + svg.string(), dir_);
    ASSERT_EQ(r.status, 0) << r.err;
    const Image img = decode_png(slurp(png));
    EXPECT_EQ(img.width, 300);
    EXPECT_LT(ink(img).first, 0.001);
}

TEST(PngDecoder, RejectsWhatIsNotAPicture) {
    // Negative control for the checks above: a blank (all white) picture has no ink.
    Image white;
    white.width = white.height = 4;
    white.rgb.assign(16, {255, 255, 255});
    EXPECT_EQ(ink(white).first, 0.0);
    EXPECT_NONFATAL_FAILURE(decode_png("not a png"), "not a PNG");
}

}  // namespace
}  // namespace polymoe::report
