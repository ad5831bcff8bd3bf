import Graph
import Runtime

/// An approximate local rewrite whose new weights are fitted on calibration data: a pure `match`
/// as in ``RewritePattern``, and a `rewrite` that fits, edits through the rewriter and returns
/// its description and measurements. The budget driver (``Rewriter/applyWithinBudget(_:)``)
/// measures each one and keeps it or undoes it.
protocol FittedRewrite: Sendable {
  associatedtype Match
  static var name: String { get }
  static var rootOpTypes: Set<String> { get }
  func match(_ node: Node, in graph: Graph) -> Match?
  /// What the rewrite would do, in words, for the report (also of a skipped site).
  func describe(_ match: Match, in graph: Graph) -> String
  /// Why the rewrite does not pay at this site, by the pass's cost model (nil: it pays). Checked
  /// before any fitting; a site it refuses is reported as skipped with this reason.
  func costObjection(_ match: Match) -> String?
  /// Fits on `calibration` and applies `match`; returns its measurements (fit errors, MACs).
  func rewrite(_ match: Match, _ rewriter: inout Rewriter, calibration: Calibration) throws -> [String: Double]
}

extension FittedRewrite {
  func costObjection(_ match: Match) -> String? { nil }

  fileprivate func apply(at id: NodeID, _ rewriter: inout Rewriter, _ budget: inout BudgetState) -> Bool? {
    guard rewriter.graph.contains(id) else { return nil }
    let node = rewriter.graph[id]
    guard OpType.isDefaultDomain(node.domain), Self.rootOpTypes.contains(node.opType),
      let m = match(node, in: rewriter.graph)
    else { return nil }
    let description = describe(m, in: rewriter.graph)
    rewriter.beginChange(Self.name)
    if let objection = costObjection(m) {
      rewriter.skipChange(description, reason: objection)
      return false
    }
    guard let calibration = rewriter.approximation.calibration else {
      rewriter.skipChange(description, reason: "no calibration data (give --calibration data.npz or --calibration-random N)")
      return false
    }
    var metrics: [String: Double]
    do { metrics = try rewrite(m, &rewriter, calibration: calibration) } catch {
      rewriter.skipChange(description, reason: "\(error)")
      return false
    }
    let threads = rewriter.approximation.threads
    let error: Double
    do {
      if budget.error == nil { budget.error = try calibration.outputError(of: budget.before, against: rewriter.original, threads: threads) }
      error = try calibration.outputError(of: rewriter.model, against: rewriter.original, threads: threads)
    } catch {
      rewriter.skipChange(description, reason: "the rewritten model could not be measured: \(error)", metrics: metrics)
      return false
    }
    metrics["output_error"] = error
    metrics["output_error_before"] = budget.error ?? 0
    if let limit = rewriter.approximation.maxError, !(error <= limit) {
      rewriter.skipChange(
        description, reason: "output error \(significant(error)) over the budget \(significant(limit))", metrics: metrics)
      return false
    }
    rewriter.recordMetrics(metrics)
    rewriter.commitChange(description + " (output error \(significant(error)))")
    budget.error = error
    return true
  }
}

/// The model's measured error so far, and the model it was measured on.
private struct BudgetState {
  var before: Model
  var error: Double?
}

/// `x` with three significant digits: "1.23e-3".
func significant(_ x: Double) -> String {
  guard x.isFinite, x > 0 else { return "\(x)" }
  var mantissa = x, exponent = 0
  while mantissa >= 10 { mantissa /= 10; exponent += 1 }
  while mantissa < 1 { mantissa *= 10; exponent -= 1 }
  let rounded = (mantissa * 100).rounded() / 100
  let digits = rounded == rounded.rounded() ? "\(Int(rounded))" : "\(rounded)"
  return exponent == 0 ? digits : "\(digits)e\(exponent)"
}

extension Rewriter {
  /// Offers every node to every fitted rewrite, in topological order, until a sweep changes nothing.
  /// Each rewrite is measured as it is applied (the model's output error against ``original`` on
  /// the held-out calibration samples); one that would take the model past
  /// `approximation.maxError` is undone and reported as skipped with its error, as is every match
  /// when there is no calibration data. A site skipped once is not offered again. Returns the
  /// number of changes.
  @discardableResult
  mutating func applyWithinBudget(_ rewrites: [any FittedRewrite], maxSweeps: Int = 32) -> Int {
    let start = changes.count
    var done = Set<SkippedSite>()
    var budget = BudgetState(before: model, error: nil)
    for _ in 0..<maxSweeps {
      var changed = false
      for node in graph.topologicalOrder() ?? graph.nodeIDs {
        for (index, rewrite) in rewrites.enumerated() where !done.contains(SkippedSite(node: node, rewrite: index)) {
          guard canRewrite else { return changes.count - start }
          if budget.error == nil { budget.before = model }
          switch rewrite.apply(at: node, &self, &budget) {
          case true?: changed = true
          case false?: done.insert(SkippedSite(node: node, rewrite: index))
          case nil: break
          }
        }
      }
      if !changed { break }
    }
    return changes.count - start
  }
}

private struct SkippedSite: Hashable {
  let node: NodeID
  let rewrite: Int
}
