import Graph

/// A local rewrite: a pure `match` that looks at the graph as a value, and a `rewrite` that changes
/// it only through the ``Rewriter``.
///
/// The greedy driver (``Rewriter/applyGreedily(_:maxSweeps:)``) offers every node whose op type is
/// one of ``rootOpTypes`` (in the default ONNX domain) to `match`; a match is rewritten at once,
/// inside a change the rewriter logs with the description `rewrite` returns. Anything unexpected in
/// user data makes `match` return nil: a pattern declines, it never crashes.
public protocol RewritePattern: Sendable {
  associatedtype Match
  /// The pattern's name in reports, e.g. "conv-batchnorm".
  static var name: String { get }
  /// The op types a match can start from (nil: any node).
  static var rootOpTypes: Set<String>? { get }
  func match(_ node: Node, in graph: Graph) -> Match?
  /// Applies `match`; returns what happened, in words, for the report.
  func rewrite(_ match: Match, _ rewriter: inout Rewriter) throws -> String
}

extension RewritePattern {
  /// Matches and rewrites at `node`; true when it changed the graph.
  fileprivate func apply(at node: NodeID, _ rewriter: inout Rewriter) -> Bool {
    guard rewriter.graph.contains(node) else { return false }
    let n = rewriter.graph[node]
    guard n.domain.isEmpty || n.domain == "ai.onnx" else { return false }
    if let roots = Self.rootOpTypes, !roots.contains(n.opType) { return false }
    guard let m = match(n, in: rewriter.graph) else { return false }
    rewriter.beginChange(Self.name)
    do {
      let description = try rewrite(m, &rewriter)
      // A rewrite may measure itself and back out (Rewriter.skipChange): nothing left to commit.
      guard rewriter.pendingChange != nil else { return false }
      rewriter.commitChange(description)
      return true
    } catch {
      rewriter.rollBack(because: "node '\(n.name)' (\(n.opType)): \(error)")
      return false
    }
  }
}

extension Rewriter {
  /// Offers every node to every pattern, sweeping in topological order, until a sweep changes
  /// nothing, `maxSweeps` sweeps have run, or the rewrite budget is spent. Returns the number of
  /// changes. A node whose rewrite failed (and was rolled back) is not offered to that pattern again.
  @discardableResult
  public mutating func applyGreedily(_ patterns: [any RewritePattern], maxSweeps: Int = 32) -> Int {
    let start = changes.count
    var failed = Set<FailedSite>()
    for _ in 0..<maxSweeps {
      let order = graph.topologicalOrder() ?? graph.nodeIDs
      var changed = false
      for node in order {
        for (index, pattern) in patterns.enumerated() where !failed.contains(FailedSite(node: node, pattern: index)) {
          guard canRewrite else { return changes.count - start }
          let warningsBefore = warnings.count
          if pattern.apply(at: node, &self) {
            changed = true
          } else if warnings.count > warningsBefore {
            failed.insert(FailedSite(node: node, pattern: index))
          }
        }
      }
      if !changed { break }
    }
    return changes.count - start
  }
}

private struct FailedSite: Hashable {
  let node: NodeID
  let pattern: Int
}
