// Writes the plan fuzzer's seed corpus (plan_fuzz_support.h) into a folder:
//   mlprt_make_plan_seeds <dir>
// The valid seeds are built on this machine, so that they pass its hardware check.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "plan_fuzz_support.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: mlprt_make_plan_seeds <dir>\n";
    return 2;
  }
  auto seeds = mlprt::fuzz::make_plan_seeds();
  if (!seeds) {
    std::cerr << "mlprt_make_plan_seeds: " << seeds.status().message() << "\n";
    return 1;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  for (const auto& seed : *seeds) {
    std::ofstream out(dir / seed.name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(seed.bytes.data()),
              static_cast<std::streamsize>(seed.bytes.size()));
    if (!out) {
      std::cerr << "mlprt_make_plan_seeds: cannot write " << (dir / seed.name) << "\n";
      return 1;
    }
  }
  std::cout << seeds->size() << " seed plans in " << dir << "\n";
  return 0;
}
