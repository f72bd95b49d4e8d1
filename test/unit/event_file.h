// An --events file in a fresh temporary folder, and what was written to
// it, one parsed JSON object per line (vmm/event_log.h).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vmm/event_log.h"

struct EventFile {
	EventFile()
	{
		std::string pattern = (std::filesystem::temp_directory_path() / "kairos-events-XXXXXX").string();
		folder = mkdtemp(pattern.data());
		path = folder / "events.jsonl";
	}
	~EventFile() { std::filesystem::remove_all(folder); }
	EventFile(const EventFile &) = delete;
	EventFile &operator=(const EventFile &) = delete;

	std::unique_ptr<kairos::vmm::EventLog> open(const kairos::Logger &log)
	{
		return std::move(kairos::vmm::EventLog::open(path, log).value());
	}
	// Each line as written; a line that is not JSON makes parse() throw.
	std::vector<std::string> text_lines() const
	{
		std::ifstream in(path);
		std::vector<std::string> lines;
		for (std::string line; std::getline(in, line);)
			lines.push_back(line);
		return lines;
	}
	std::vector<nlohmann::json> lines() const
	{
		std::vector<nlohmann::json> parsed;
		for (const std::string &line : text_lines())
			parsed.push_back(nlohmann::json::parse(line));
		return parsed;
	}

	std::filesystem::path folder;
	std::filesystem::path path;
};
