// What `vmfork vm ...` prints for people (the --json output is the daemon's
// own body): the daemon's JSON (api_contract.md) turned into aligned tables
// and lines. Plain functions of the JSON, so they are tested without a
// daemon; a field missing or of another type shows as "?" rather than
// failing, since a newer daemon may send more or other fields.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vmfork::cli {

// Rows of cells, the first row the header, as columns two blanks apart; the
// last column is not padded. Each line ends in '\n'.
std::string format_table(const std::vector<std::vector<std::string>>& rows);

// GET /vms ({"vms": [VM, ...]}): ID STATE ENGINE VCPUS MEM PARENT STATUS,
// STATUS being the exit status once Exited and the error when there is one.
std::string format_vm_table(const nlohmann::json& body);

// POST /vms/{id}/fork and POST /snapshots/load ({"clones": [...]}): each
// clone's id and its latency in microseconds ("-" when the daemon has none).
std::string format_clones(const nlohmann::json& body);

// PUT /vms/{id}/snapshot: one line naming the directory, its kind and size,
// how long the VM was paused and how long the files took.
std::string format_snapshot(const nlohmann::json& body);

// One line of GET /events: "#seq event vm" and the event's other fields as
// key=value.
std::string format_event(const nlohmann::json& event);

}  // namespace vmfork::cli
