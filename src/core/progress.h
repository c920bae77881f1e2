// A progress line on stderr for long work (prepare, trace, train): done/total, rate and ETA.
// On a terminal it redraws one line at most 5 times a second; when stderr is a file or pipe (CI,
// logs) it prints a plain line at most every 10 seconds, so logs stay readable. Output only; it
// never changes what is computed. POLYMOE_PROGRESS=0 silences it.
#pragma once

#include <cstdint>
#include <string>

#include "core/timer.h"

namespace polymoe {

class Progress {
public:
    // `unit` names what is counted ("MB", "tokens", "steps"); `scale` divides raw counts for
    // display (1e6 for bytes shown as MB).
    Progress(std::string label, double total, std::string unit, double scale = 1.0);
    ~Progress();
    void set_label(std::string label);
    // Sets the amount done so far (raw units) and redraws if it is time.
    void update(double done);
    // Draws the final state and ends the line.
    void finish();

private:
    void draw(bool final);
    std::string label_, unit_;
    double total_, scale_, done_ = 0, last_draw_ = -1;
    bool tty_, enabled_, finished_ = false;
    Timer timer_;
};

}  // namespace polymoe
