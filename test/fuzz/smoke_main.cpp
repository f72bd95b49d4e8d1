// A libFuzzer target run without libFuzzer, so that every build with any
// compiler runs it (issue 12, "fuzzing as a habit"): CTest gives each target
// a few seconds of seeded random inputs, under ASan and UBSan where the
// compiler has them. The long campaign is libFuzzer's (KAIROS_FUZZ=ON with
// clang; see docs/SECURITY.md), which mutates with coverage; this driver
// only guards against the regressions random bytes find.
//
//   TARGET_smoke [--seconds N] [--seed S] [FILE...]
//
// Files are run first (a regression corpus, e.g. a crash libFuzzer found).
// On a crash the input is written to fuzz-crash-SEED-N.bin in the current
// folder before the process dies, so the failure can be replayed.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

namespace {

// What the crash handler writes out: set before each input runs.
const uint8_t *g_input = nullptr;
size_t g_input_size = 0;
char g_crash_path[128] = "fuzz-crash.bin";

void write_input_and_die(int signal_number)
{
	// Async-signal-safe only: open, write, close, _exit.
	int fd = open(g_crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		ssize_t ignored = write(fd, g_input, g_input_size);
		(void)ignored;
		close(fd);
	}
	const char message[] = "fuzz smoke: crashed; the input is in the file named above\n";
	ssize_t ignored = write(STDERR_FILENO, message, sizeof(message) - 1);
	(void)ignored;
	signal(signal_number, SIG_DFL);
	raise(signal_number);
}

void install_crash_handlers()
{
	for (int signal_number : {SIGILL, SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGTRAP})
		signal(signal_number, write_input_and_die);
}

void run(const std::vector<uint8_t> &input, uint64_t seed, uint64_t index)
{
	std::snprintf(g_crash_path, sizeof(g_crash_path), "fuzz-crash-%llu-%llu.bin",
		      static_cast<unsigned long long>(seed), static_cast<unsigned long long>(index));
	// As libFuzzer does, never a null pointer, even for no bytes.
	static const uint8_t kNothing = 0;
	g_input = input.empty() ? &kNothing : input.data();
	g_input_size = input.size();
	LLVMFuzzerTestOneInput(g_input, g_input_size);
}

// Mostly short inputs (the targets read them as small programs), now and
// then long ones; bytes skewed towards 0 and 0xff, where edge cases live.
std::vector<uint8_t> random_input(std::mt19937_64 &random)
{
	size_t size = random() % 8 == 0 ? random() % 65536 : random() % 512;
	std::vector<uint8_t> input(size);
	for (uint8_t &byte : input) {
		uint64_t roll = random();
		byte = roll % 16 == 0 ? 0 : roll % 16 == 1 ? 0xff : static_cast<uint8_t>(roll >> 8);
	}
	return input;
}

}  // namespace

int main(int argc, char **argv)
{
	double seconds = 5;
	uint64_t seed = 1;
	std::vector<std::string> files;
	for (int i = 1; i < argc; ++i) {
		std::string arg = argv[i];
		if ((arg == "--seconds" || arg == "--seed") && i + 1 < argc) {
			char *end = nullptr;
			const char *value = argv[++i];
			if (arg == "--seconds")
				seconds = std::strtod(value, &end);
			else
				seed = std::strtoull(value, &end, 10);
			if (end == value || *end != '\0' || seconds < 0) {
				std::fprintf(stderr, "fuzz smoke: %s: not a number: %s\n", arg.c_str(), value);
				return 2;
			}
		} else if (!arg.empty() && arg[0] == '-') {
			std::fprintf(stderr, "usage: %s [--seconds N] [--seed S] [FILE...]\n", argv[0]);
			return 2;
		} else {
			files.push_back(arg);
		}
	}
	install_crash_handlers();

	uint64_t runs = 0;
	for (const std::string &file : files) {
		std::ifstream in(file, std::ios::binary);
		if (!in) {
			std::fprintf(stderr, "fuzz smoke: cannot read %s\n", file.c_str());
			return 2;
		}
		run(std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {}), seed, runs++);
	}
	std::mt19937_64 random(seed);
	auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
	while (std::chrono::steady_clock::now() < until)
		run(random_input(random), seed, runs++);
	std::printf("fuzz smoke: %llu inputs (seed %llu, %.1f s), no crash\n", static_cast<unsigned long long>(runs),
		    static_cast<unsigned long long>(seed), seconds);
	return 0;
}
