#include "views/cgroup_tree.h"

#include <algorithm>
#include <map>
#include <memory>

namespace diskwatch {

namespace {

constexpr size_t kMaxDepth = 32;

struct Node {
    std::string name;
    std::string path;
    size_t depth = 0;
    ReportRow sum;             // this cgroup's subtree, all mounts
    double own_largest = -1;   // the bytes of the own row that describes it
    std::map<std::string, std::unique_ptr<Node>> children;
};

// The components of a cgroup path, at most kMaxDepth ("/a/b" -> a, b).
std::vector<std::string> components(const std::string &path)
{
    std::vector<std::string> parts;
    size_t start = 0;
    while (start < path.size()) {
        const size_t slash = path.find('/', start);
        const size_t end = slash == std::string::npos ? path.size() : slash;
        if (end > start)
            parts.push_back(path.substr(start, end - start));
        start = end + 1;
    }
    if (parts.size() > kMaxDepth)
        parts.resize(kMaxDepth);
    return parts;
}

void flatten(const Node &node, const std::function<bool(const ReportRow &, const ReportRow &)> &first,
             std::vector<TreeLine> &out)
{
    out.push_back({node.sum, node.depth, node.name});
    std::vector<const Node *> children;
    children.reserve(node.children.size());
    for (const auto &[name, child] : node.children)
        children.push_back(child.get());
    std::stable_sort(children.begin(), children.end(), [&](const Node *a, const Node *b) {
        if (first(a->sum, b->sum))
            return true;
        if (first(b->sum, a->sum))
            return false;
        return a->name < b->name;
    });
    for (const Node *child : children)
        flatten(*child, first, out);
}

}  // namespace

std::vector<TreeLine> cgroup_tree(const std::vector<ReportRow> &by_cgroup,
                                  const std::function<bool(const ReportRow &, const ReportRow &)> &first)
{
    if (by_cgroup.empty())
        return {};
    Node root;
    root.name = "/";
    root.path = "/";
    root.sum.cgroup = "/";
    root.sum.pid = 0;
    for (const auto &row : by_cgroup) {
        Node *node = &root;
        add_counters(node->sum, row);
        for (const auto &part : components(row.cgroup)) {
            auto &child = node->children[part];
            if (!child) {
                child = std::make_unique<Node>();
                child->name = part;
                child->path = (node->path == "/" ? "" : node->path) + "/" + part;
                child->depth = node->depth + 1;
                child->sum.cgroup = child->path;
                child->sum.pid = 0;
            }
            node = child.get();
            add_counters(node->sum, row);
        }
        // The cgroup's own largest writer describes its line (as a cgroup row
        // is described by its largest writer); its counters stay the sums.
        if (static_cast<double>(row.total_bytes) > node->own_largest) {
            node->own_largest = static_cast<double>(row.total_bytes);
            node->sum = with_counters(row, node->sum);
            node->sum.cgroup = node->path;
        }
    }
    std::vector<TreeLine> lines;
    flatten(root, first, lines);
    return lines;
}

}  // namespace diskwatch
