// Tests of the command-line intervention specs: each flag sets exactly the intended layers and
// experts, flags combine, force masks the complement, and malformed or out-of-range specs are
// usage errors naming the flag and the spec.
#include "eval/intervention_spec.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace polymoe::eval {
namespace {

constexpr int64_t L = 4, E = 8, K = 2;

TEST(InterventionSpec, FlagsSetTheNamedLayersAndExperts) {
    InterventionSpecs s;
    s.mask = {"3,5@1:2"};
    s.drop = {"7@3"};
    s.steer = {"2=1.5,4=-0.5@0:1", "2=0.25@1"};
    const model::Intervention iv = parse_interventions(s, L, E, K);
    ASSERT_EQ(iv.layers.size(), 4u);
    for (int64_t l = 0; l < L; ++l) {
        const auto& li = iv.layers[static_cast<size_t>(l)];
        const bool masked = l == 1 || l == 2;
        ASSERT_EQ(li.mask.empty(), !masked) << l;
        if (masked) {
            for (int64_t e = 0; e < E; ++e)
                EXPECT_EQ(li.mask[static_cast<size_t>(e)], e == 3 || e == 5 ? 1 : 0);
        }
        ASSERT_EQ(li.drop.empty(), l != 3);
        if (l == 3) {
            EXPECT_EQ(li.drop, (std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 0, 1}));
        }
    }
    EXPECT_EQ(iv.layers[0].steer, (std::vector<float>{0, 0, 1.5f, 0, -0.5f, 0, 0, 0}));
    EXPECT_EQ(iv.layers[1].steer, (std::vector<float>{0, 0, 1.75f, 0, -0.5f, 0, 0, 0}));
    EXPECT_TRUE(iv.layers[2].steer.empty());
    EXPECT_EQ(iv.at(3)->drop[7], 1);
    EXPECT_EQ(iv.at(4), nullptr);
}

TEST(InterventionSpec, ForceMasksTheComplementOnEveryLayerByDefault) {
    InterventionSpecs s;
    s.force = {"0,6"};
    const model::Intervention iv = parse_interventions(s, L, E, K);
    for (int64_t l = 0; l < L; ++l)
        EXPECT_EQ(iv.layers[static_cast<size_t>(l)].mask,
                  (std::vector<uint8_t>{0, 1, 1, 1, 1, 1, 0, 1}));
}

TEST(InterventionSpec, BadSpecsAreUsageErrorsNamingFlagAndSpec) {
    auto err = [](InterventionSpecs s) -> std::string {
        try {
            parse_interventions(s, L, E, K);
        } catch (const UsageError& e) {
            return e.what();
        }
        return "no error";
    };
    InterventionSpecs s;
    s.mask = {"8"};
    EXPECT_NE(err(s).find("--mask 8: expected expert ids in [0, 8), found 8"), std::string::npos)
        << err(s);
    s.mask = {"1@2:9"};
    EXPECT_NE(err(s).find("0 <= FIRST <= LAST <= 3, found 2:9"), std::string::npos) << err(s);
    s.mask = {"1,,2"};
    EXPECT_NE(err(s).find("empty item"), std::string::npos);
    s.mask = {"x"};
    EXPECT_NE(err(s).find("expected an integer expert id, found 'x'"), std::string::npos);
    s.mask = {"1,1"};
    EXPECT_NE(err(s).find("listed twice"), std::string::npos);
    s.mask.clear();
    s.force = {"3"};
    EXPECT_NE(err(s).find("--force 3: expected at least K = 2"), std::string::npos) << err(s);
    s.force.clear();
    s.steer = {"3"};
    EXPECT_NE(err(s).find("expected EXPERT=LAMBDA"), std::string::npos);
    s.steer = {"3=inf"};
    EXPECT_NE(err(s).find("finite number"), std::string::npos);
    s.steer.clear();
    s.mask = {"0,1,2,3,4,5,6@0"};  // one expert left for top-2
    EXPECT_NE(err(s).find("leave 1 of 8 experts at layer 0"), std::string::npos) << err(s);
}

}  // namespace
}  // namespace polymoe::eval
