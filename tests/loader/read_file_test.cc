// read_file: the bytes of a regular file; missing files, directories and
// devices are errors naming the path.
#include "vmm/loader/read_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/guestmm/test_support.h"

namespace vmfork::testing {
namespace {

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("vmfork_read_file_" + std::to_string(::getpid()) + "_" + name);
}

TEST(ReadFile, ReturnsTheWholeFile) {
  const std::filesystem::path path = temp_path("whole");
  const std::vector<std::byte> data = pattern(100'000, 3);
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(data.data()),
              static_cast<std::streamsize>(data.size()));
  }
  EXPECT_EQ(unwrap(read_file(path)), data);
  std::filesystem::remove(path);
}

TEST(ReadFile, EmptyFileGivesNoBytes) {
  const std::filesystem::path path = temp_path("empty");
  { std::ofstream out(path); }
  EXPECT_TRUE(unwrap(read_file(path)).empty());
  std::filesystem::remove(path);
}

TEST(ReadFile, MissingFileIsASystemErrorNamingThePath) {
  const std::filesystem::path path = temp_path("missing");
  const Result<std::vector<std::byte>> bytes = read_file(path);
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.error().code, ErrorCode::kSystem);
  EXPECT_NE(bytes.error().message.find(path.string()), std::string::npos);
}

TEST(ReadFile, DirectoriesAndDevicesAreRefused) {
  for (const char* path : {"/tmp", "/dev/zero"}) {
    SCOPED_TRACE(path);
    const Result<std::vector<std::byte>> bytes = read_file(path);
    ASSERT_FALSE(bytes.ok());
    EXPECT_NE(bytes.error().message.find("not a regular file"), std::string::npos)
        << bytes.error().message;
  }
}

}  // namespace
}  // namespace vmfork::testing
