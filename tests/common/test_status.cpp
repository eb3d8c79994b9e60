#include <gtest/gtest.h>

#include "common/check.h"
#include "mlprt/status.h"

namespace mlprt {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return make_error(StatusCode::kInvalidArgument, "value ", v, " is not positive");
  return v;
}

Status double_it(int v, int* out) {
  MLPRT_ASSIGN_OR_RETURN(int x, parse_positive(v));
  *out = 2 * x;
  return Status::ok();
}

TEST(Status, OkAndError) {
  EXPECT_TRUE(Status::ok().is_ok());
  Status s(StatusCode::kNotFound, "no such file");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.with_context("model.onnx").message(), "model.onnx: no such file");
  EXPECT_EQ(Status::ok().with_context("x").message(), "");
}

TEST(Status, MacrosPropagate) {
  int out = 0;
  EXPECT_TRUE(double_it(4, &out).is_ok());
  EXPECT_EQ(out, 8);
  Status s = double_it(-3, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "value -3 is not positive");
}

TEST(Status, CheckNamesFileAndLine) {
  auto failing = []() -> Status {
    MLPRT_CHECK(1 + 1 == 3, "arithmetic");
    return Status::ok();
  };
  Status s = failing();
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_NE(s.message().find("test_status.cpp:"), std::string::npos);
  EXPECT_NE(s.message().find("arithmetic"), std::string::npos);
}

}  // namespace
}  // namespace mlprt

namespace mlprt {
namespace {

TEST(Result, FromAnOkStatusIsAnInternalErrorWithAMessage) {
  const Result<int> r = Status::ok();
  EXPECT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("OK status"), std::string::npos);
}

}  // namespace
}  // namespace mlprt
