// ntc — command-line entry point. Every subcommand parses its own flags (cli/args.h); errors in
// input or files print one line "ntc: error: ..." and exit with status 1; usage errors print that
// line and the command's usage and exit 2; --help (ntc --help, ntc help CMD, ntc CMD --help) prints
// usage to stdout and exits 0.
#include <cstdio>
#include <new>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "lib/args.h"
#include "cli/commands.h"
#include "kernels/kernels.h"
#include "lib/common.h"
#include "lib/blas.h"
#include "lib/gemm.h"
#include "lib/threads.h"
#include "nn/ntc.h"

namespace {

const char* kVersion = NTC_VERSION_STRING;

const char* kUsage =
    "usage: ntc [--threads N] [--kernels simd|ref] [--target T] [--gemm auto|ntc|openblas] <command> [args]\n"
    "commands:\n"
    "  encode IN.(png|jpg|ppm) -o OUT.ntc [--model NAME|FILE] [--lambda L | --quality Q] [--sga ITERS]\n"
    "         [--sga-max-memory MIB] [--psnr] [-v]\n"
    "         [--overfit fast|medium|slow | --iters N] [--seed S] [--overfit-widths SYN,ARM]\n"
    "         [--overfit-upsample bilinear|learned]\n"
    "                                    (--overfit: a per-image decoder in the stream, no model;\n"
    "                                    IN or OUT '-': stdin or stdout)\n"
    "  decode IN.ntc -o OUT.(png|ppm) [--format png|ppm] [--model NAME|FILE] [--max-pixels N] [--max-memory MIB] [-v]\n"
    "                                    (IN or OUT '-': stdin or stdout; --format for stdout, default png)\n"
    "  info IN.ntc [--json]              a stream's header: size, model (hash, family if known), λ, sections, bpp\n"
    "                                    (an overfitted stream: its decoder's shape and FLOPs/px)\n"
    "  eval --data DIR [--model NAME|FILE] [--sga ITERS] [--lambda L1,...] --json OUT.json [--csv OUT.csv] [--limit N]\n"
    "  bdrate REF.json TEST.json [--json]  Bjontegaard delta rate / PSNR of two RD curves\n"
    "  plot A.json B.json ... -o rd.svg|png  PSNR-vs-bpp curves\n"
    "  analyze blocking --model F --data DIR --json OUT [--quality Q | --lambda L] [--block 16]\n"
    "                                    blockiness of decoded images (boundary_ratio)\n"
    "  analyze gap --model F --data DIR --sga N --json OUT [--quality Q | --lambda L]\n"
    "                                    the inference gap SGA recovers (amortised_rd, sga_rd, gap_percent)\n"
    "  analyze manifold --model F --data DIR --json OUT [--pairs 8] [--crop 256] [--steps 11] [-o FIG.svg]\n"
    "         [--strip PNG]               manifold flatness (length_ratio_mean; SPEC 6.2)\n"
    "  analyze filters --model F -o BASIS.png [--images DIR] [--json OUT] [--overlap PNG]\n"
    "                                    synthesis basis functions (SPEC 6.3)\n"
    "  demo [--steps N] [--image FILE]   train a tiny autoencoder on one image (smoke test)\n"
    "  flops --config NAME|--model FILE [--size HxW] [--json] [--time] | --stream F.ntc [--json]\n"
    "                                    FLOPs, parameters (and time) per layer and part\n"
    "  train --config NAME --data DIR --lambda L --steps N --out DIR [--crop 128] [--batch 8]\n"
    "        [--lr 1e-4] [--val DIR] [--val-every N] [--resume] [--seed S] [--quant noise|mixed]\n"
    "        [--adam keras|torch] [--checkpoint-every N] [--flips] [--min-scale S]\n"
    "        [--decay-from STEP] [--warmup N] [--no-lambda-boost] [--precision auto|fp32|bf16]\n"
    "        [--reduce batch|exact] [--unit U] [--no-overlap] [--rank-timeout S]\n"
    "        (mpirun -np N ntc train ...: data-parallel, the same weights as one process with\n"
    "        --reduce exact; see README \"Training on several machines\")\n"
    "  train --resume --out DIR [--steps N] [--decay-from STEP] [--warmup N] [--data DIR] [--precision P]\n"
    "        [--reduce R] [--unit U] [--crop C] [--batch B]\n"
    "        [--lambda L1,L2,... (re-anchor the rate points)] [--from SNAPSHOT]\n"
    "  train --out DIR --snapshot FILE    compact snapshot (f16 weights, no Adam moments) of DIR's checkpoint\n"
    "  train --info (--out DIR | --from FILE)  a checkpoint's step, schedule and training hours (JSON)\n"
    "                                    train a model; checkpoints resume exactly\n"
    "  derive --from CKPT --config NAME --out DIR [--data DIR] [--crops 200] [--crop 256] [--seed S]\n"
    "                                    a new run from a trained one: every part the config shares with\n"
    "                                    CKPT copied, a jpeg_like synthesis fitted by least squares to\n"
    "                                    the decoded latents of training crops (resume with train --resume)\n"
    "  bench <name> [--json]             benchmarks: conv, rans, decode, train, sga, overfit\n"
    "                                    (bench decode --model FILE --image PNG: per-stage and process times;\n"
    "                                    bench train [--reduce exact --unit U --no-overlap], also under\n"
    "                                    mpirun: the data-parallel step and its communication share)\n"
    "model families (--model NAME): two-layer (default), jpeg-like; see data/MODELS.md\n"
    "  version (or --version)            print the version, the SIMD target and the GEMM back end\n"
    "  help [CMD] (or CMD --help)        this text, or one command's usage\n"
    "global flags (before or after the command):\n"
    "  --threads N      threads for OpenMP and OpenBLAS (default: all cores)\n"
    "  --kernels K      simd (default) or ref (scalar reference twins)\n"
    "  --target T       SIMD target of every kernel: auto (default: the best this CPU runs), avx512,\n"
    "                   avx2, or scalar (= --kernels ref)\n"
    "  --progress       progress bars on stderr even when it is not a terminal\n"
    "  --gemm G         GEMM back end: auto (default: ntc's own kernel on AVX2/AVX-512 targets, else\n"
    "                   OpenBLAS), ntc, or openblas\n";

// Pulls the global flags out of argv wherever they appear.
std::vector<std::string> take_globals(int argc, char** argv) {
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const std::string& name) -> std::string {
      if (a.rfind(name + "=", 0) == 0) return a.substr(name.size() + 1);
      if (i + 1 >= argc) ntc::cli::usage_fail("flag ", name, " needs a value");
      return argv[++i];
    };
    if (a == "--threads" || a.rfind("--threads=", 0) == 0) {
      std::string v = value("--threads");
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || n < 1 || n > 1024) ntc::cli::usage_fail("--threads wants 1..1024, got '", v, "'");
      ntc::set_num_threads(int(n));
    } else if (a == "--kernels" || a.rfind("--kernels=", 0) == 0) {
      std::string v = value("--kernels");
      if (v != "simd" && v != "ref") ntc::cli::usage_fail("--kernels wants simd or ref, got '", v, "'");
      ntc::k::set_reference_kernels(v == "ref");
    } else if (a == "--target" || a.rfind("--target=", 0) == 0) {
      std::string v = value("--target");
      if (v != "scalar" && v != "avx2" && v != "avx512" && v != "auto")
        ntc::cli::usage_fail("--target wants scalar, avx2, avx512 or auto, got '", v, "'");
      if (!ntc::k::set_simd_target(v)) ntc::fail("--target ", v, ": this CPU cannot run it");
    } else if (a == "--progress") {
      ntc::cli::force_progress(true);
    } else if (a == "--gemm" || a.rfind("--gemm=", 0) == 0) {
      std::string v = value("--gemm");
      if (v != "auto" && v != "ntc" && v != "openblas") ntc::cli::usage_fail("--gemm wants auto, ntc or openblas, got '", v, "'");
      ntc::set_gemm_backend(v == "ntc" ? ntc::GemmBackend::Ntc
                            : v == "openblas" ? ntc::GemmBackend::OpenBLAS : ntc::GemmBackend::Auto);
    } else {
      rest.push_back(a);
    }
  }
  return rest;
}

// The usage of one command: its lines of kUsage (those that start with "  CMD") and the indented
// lines that follow them. Empty for an unknown command.
std::string command_usage(const std::string& cmd) {
  if (cmd.empty() || cmd[0] == '-') return "";
  std::string out, line;
  std::istringstream in(kUsage);
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind("  " + cmd + " ", 0) == 0 || line == "  " + cmd) inside = true;
    else if (!(inside && line.rfind("    ", 0) == 0)) inside = false;
    if (inside) out += line + "\n";
  }
  return out.empty() ? out : "usage: ntc [global flags] " + out.substr(2);
}

}  // namespace

// Exit statuses: 0 success (and help), 1 runtime error (bad input, unreadable files, out of
// memory), 2 usage error (unknown command or flag, missing or malformed arguments).
int main(int argc, char** argv) {
  std::string cmd;
  try {
    ntc::set_num_threads(0);
    std::vector<std::string> args = take_globals(argc, argv);
    if (args.empty()) {
      std::fprintf(stderr, "ntc: error: name a command\n%s", kUsage);
      return 2;
    }
    if (args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
      if (args.size() < 2) {
        std::fputs(kUsage, stdout);
        return 0;
      }
      const std::string u = command_usage(args[1]);
      if (u.empty()) ntc::cli::usage_fail("help: unknown command '", args[1], "'");
      std::fputs(u.c_str(), stdout);
      return 0;
    }
    cmd = args[0];
    args.erase(args.begin());
    if (cmd == "version" || cmd == "--version") {
      if (!args.empty()) ntc::cli::Args(args, {}, {});  // --help, or an unknown flag
      std::printf("ntc %s (kernels %s, GEMM %s, OpenBLAS %s, %d threads)\n", kVersion, ntc::k::kernel_target_name(),
                  ntc::gemm_backend_name(), ntc::blas_kernel_name(), ntc::num_threads());
      return 0;
    }
    if (cmd == "demo") return ntc::cli::cmd_demo(args);
    if (cmd == "bench") return ntc::bench::run(args);
    if (cmd == "flops") return ntc::cli::cmd_flops(args);
    if (cmd == "train") return ntc::cli::cmd_train(args);
    if (cmd == "derive") return ntc::cli::cmd_derive(args);
    if (cmd == "encode") return ntc::cli::cmd_encode(args);
    if (cmd == "decode") return ntc::cli::cmd_decode(args);
    if (cmd == "info") return ntc::cli::cmd_info(args);
    if (cmd == "eval") return ntc::cli::cmd_eval(args);
    if (cmd == "bdrate") return ntc::cli::cmd_bdrate(args);
    if (cmd == "plot") return ntc::cli::cmd_plot(args);
    if (cmd == "analyze") return ntc::cli::cmd_analyze(args);
    std::fprintf(stderr, "ntc: error: unknown command '%s'\n%s", cmd.c_str(), kUsage);
    return 2;
  } catch (const ntc::cli::HelpRequested&) {
    const std::string u = command_usage(cmd);
    std::fputs(u.empty() ? kUsage : u.c_str(), stdout);
    return 0;
  } catch (const ntc::cli::UsageError& e) {
    std::fprintf(stderr, "ntc: error: %s\n", e.what());
    if (std::string(e.what()).rfind("usage:", 0) != 0) std::fputs(command_usage(cmd).c_str(), stderr);
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "ntc: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ntc: error: %s\n", e.what());
    return 1;
  }
}
