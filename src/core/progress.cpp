// Progress line implementation (see progress.h).
#include "core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace polymoe {

Progress::Progress(std::string label, double total, std::string unit, double scale)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), scale_(scale) {
    tty_ = ::isatty(STDERR_FILENO) != 0;
    const char* env = std::getenv("POLYMOE_PROGRESS");
    enabled_ = !(env && std::strcmp(env, "0") == 0);
}

Progress::~Progress() {
    if (!finished_) finish();
}

void Progress::set_label(std::string label) {
    label_ = std::move(label);
}

void Progress::update(double done) {
    done_ = done;
    double t = timer_.seconds();
    if (t - last_draw_ >= (tty_ ? 0.2 : 10.0)) draw(false);
}

void Progress::finish() {
    if (finished_) return;
    finished_ = true;
    draw(true);
}

void Progress::draw(bool final) {
    if (!enabled_) return;
    double t = timer_.seconds();
    last_draw_ = t;
    double rate = t > 0 ? done_ / scale_ / t : 0;
    std::string line;
    if (total_ > 0) {
        double frac = std::min(1.0, done_ / total_);
        int width = 24, fill = static_cast<int>(frac * width);
        std::string bar(static_cast<size_t>(fill), '#');
        bar.resize(static_cast<size_t>(width), '.');
        double eta = frac > 0 ? t * (1 - frac) / frac : 0;
        line = fmt::format("{} [{}] {:5.1f}% {:.1f}/{:.1f} {} {:.2f} {}/s {:.0f}s eta {:.0f}s",
                           label_, bar, 100 * frac, done_ / scale_, total_ / scale_, unit_, rate,
                           unit_, t, eta);
    } else {
        line = fmt::format("{} {:.1f} {} {:.2f} {}/s {:.0f}s", label_, done_ / scale_, unit_, rate,
                           unit_, t);
    }
    if (tty_)
        std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
    else
        std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
}

}  // namespace polymoe
