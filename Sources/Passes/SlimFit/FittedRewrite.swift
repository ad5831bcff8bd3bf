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

  /// Offers node `id` to this rewrite: nil when it does not match; `.skipped` when it was reported
  /// as skipped (cost model, no calibration, a failed fit or measurement); `.applied(nil)` when it
  /// was committed within the budget; `.applied(overrun)` when it was committed although the
  /// model's error is now over the budget: kept only if later rewrites bring it back within it.
  fileprivate func apply(at id: NodeID, _ rewriter: inout Rewriter, _ budget: inout BudgetState) -> Outcome? {
    guard rewriter.graph.contains(id) else { return nil }
    let node = rewriter.graph[id]
    guard OpType.isDefaultDomain(node.domain), Self.rootOpTypes.contains(node.opType),
      let m = match(node, in: rewriter.graph)
    else { return nil }
    let before = rewriter
    let description = describe(m, in: rewriter.graph)
    rewriter.beginChange(Self.name)
    if let objection = costObjection(m) {
      rewriter.skipChange(description, reason: objection)
      return .skipped
    }
    guard let calibration = rewriter.approximation.calibration else {
      rewriter.skipChange(description, reason: "no calibration data (give --calibration data.npz or --calibration-random N)")
      return .skipped
    }
    var metrics: [String: Double]
    do { metrics = try rewrite(m, &rewriter, calibration: calibration) } catch {
      rewriter.skipChange(description, reason: "\(error)")
      return .skipped
    }
    let threads = rewriter.approximation.threads
    let error: Double
    do {
      if budget.error == nil { budget.error = try calibration.outputError(of: budget.before, against: rewriter.original, threads: threads) }
      error = try calibration.outputError(of: rewriter.model, against: rewriter.original, threads: threads)
    } catch {
      rewriter.skipChange(description, reason: "the rewritten model could not be measured: \(error)", metrics: metrics)
      return .skipped
    }
    metrics["output_error"] = error
    metrics["output_error_before"] = budget.error ?? 0
    rewriter.recordMetrics(metrics)
    budget.error = error
    guard let limit = rewriter.approximation.maxError, !(error <= limit) else {
      rewriter.commitChange(description + " (output error \(significant(error)))")
      return .applied(nil)
    }
    // Over the budget: kept for now, since later fits (whose targets are the original's) may bring
    // the model back; the driver undoes it if none does. The wording is true of every such change
    // left in the final report.
    rewriter.commitChange(
      description + " (output error \(significant(error)), over the budget \(significant(limit)) at this step; "
        + "later rewrites brought the model back within it)")
    return .applied(
      Overrun(
        before: before, description: description,
        reason: "output error \(significant(error)) over the budget \(significant(limit))"
          + " (later rewrites did not bring the model back within it)", metrics: metrics))
  }
}

/// What offering a node to a fitted rewrite did.
private enum Outcome {
  case applied(Overrun?)
  case skipped
}

/// A rewrite committed over the budget: the state to return to, and its report line if it is undone.
private struct Overrun {
  let before: Rewriter
  let description: String
  let reason: String
  let metrics: [String: Double]
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
  /// the held-out calibration samples). One that takes the model past `approximation.maxError` is
  /// kept for now: later fits, whose targets are the original's, can bring the error back (a pool
  /// merged into GoogLeNet's stem costs 0.3, and the merges after it, fitted on its output, bring
  /// the model back to 0.02). If the model is still over the budget when no rewrite is left, the
  /// model returns to the state before the first rewrite that went over, that rewrite is reported as
  /// skipped with its error, and the sweeps run again without it. Without calibration data every
  /// match is reported as skipped. A site skipped once is not offered again to that rewrite; the
  /// rewrites after it in the list still are (alternatives: `stream-slim-fit`'s same-size kernel,
  /// then the composite one). Returns the number of changes.
  @discardableResult
  mutating func applyWithinBudget(_ rewrites: [any FittedRewrite], maxSweeps: Int = 32) -> Int {
    let start = changes.count
    var done = Set<SkippedSite>()
    while true {
      var budget = BudgetState(before: model, error: nil)
      /// The first rewrite over the budget since the model was last within it, and the sites done then.
      var pending: (site: SkippedSite, overrun: Overrun, done: Set<SkippedSite>)?
      sweeps: for _ in 0..<maxSweeps {
        var changed = false
        for node in graph.topologicalOrder() ?? graph.nodeIDs {
          for (index, rewrite) in rewrites.enumerated() {
            let site = SkippedSite(node: node, rewrite: index)
            guard !done.contains(site) else { continue }
            guard canRewrite else { break sweeps }
            if budget.error == nil { budget.before = model }
            switch rewrite.apply(at: node, &self, &budget) {
            case .applied(let overrun)?:
              changed = true
              if let overrun {
                if pending == nil { pending = (site, overrun, done) }
              } else {
                pending = nil
              }
            case .skipped?:
              done.insert(site)
              // Without calibration data every alternative at this node would be skipped alike:
              // one report line says so.
              if approximation.calibration == nil {
                for other in rewrites.indices { done.insert(SkippedSite(node: node, rewrite: other)) }
              }
            case nil: break
            }
          }
        }
        if !changed { break }
      }
      guard let (site, overrun, doneThen) = pending else { break }
      // Back to before the overrun: what was done after it (changes, skips) is undone with it.
      self = overrun.before
      beginChange(type(of: rewrites[site.rewrite]).name)
      skipChange(overrun.description, reason: overrun.reason, metrics: overrun.metrics)
      done = doneThen
      done.insert(site)
    }
    return changes.count - start
  }
}

private struct SkippedSite: Hashable {
  let node: NodeID
  let rewrite: Int
}
