import Graph

/// One pass of a pipeline, with the option values it runs with.
public struct PipelineStep: Sendable {
  public let pass: any Pass.Type
  public var options: PassOptions

  public init(_ pass: any Pass.Type, options: PassOptions? = nil) {
    self.pass = pass
    self.options = options ?? PassOptions(for: pass)
  }
}

/// What running one pass did.
public struct PassRun: Sendable, Codable, Equatable {
  public var pass: String
  /// Changes the pass made.
  public var changes: Int
  /// Nodes and constants the dead-code cleanup after it removed.
  public var cleanup: Int
  /// Wall time of the pass (cleanup and verification excluded), in seconds.
  public var seconds: Double
  /// Options that differ from their defaults, as `key=value`.
  public var options: [String]
}

/// Everything a pipeline run did, in order: the source of the report.
public struct PipelineReport: Sendable, Codable, Equatable {
  public var runs: [PassRun] = []
  public var changes: [Change] = []
  /// Rewrites that failed and were rolled back.
  public var warnings: [String] = []
  /// Whether `--max-rewrites` stopped the run before the passes were done.
  public var stoppedAtRewriteLimit = false
  /// Approximate rewrites measured and undone, with why.
  public var skipped: [Change] = []
}

/// A pass failed or left a graph the verifier rejects.
public struct PipelineError: Error, CustomStringConvertible, Equatable {
  public let message: String
  public var description: String { message }
}

/// An ordered list of passes, run one after the other.
///
/// After each pass that changed something the pipeline removes what it left dead
/// (`eliminate-dead-code`), so no pass has to clean up after itself; with `verifyEach` it runs the
/// verifier after every pass, and it always verifies the final graph.
public struct Pipeline: Sendable {
  public var steps: [PipelineStep]
  /// Run the verifier after every pass (tests, debug builds and `--verify-each`).
  public var verifyEach: Bool
  /// Stop after this many changes (`--max-rewrites`); the cleanup does not count.
  public var maxRewrites: Int?
  /// Calibration and budgets for the approximate passes.
  public var approximation = ApproximationSettings()

  public init(steps: [PipelineStep], verifyEach: Bool = Pipeline.verifiesByDefault, maxRewrites: Int? = nil) {
    self.steps = steps
    self.verifyEach = verifyEach
    self.maxRewrites = maxRewrites
  }

  public static var verifiesByDefault: Bool {
    #if DEBUG
      return true
    #else
      return false
    #endif
  }

  /// Runs the passes on `model`. `afterPass` sees the model before and after each pass that
  /// changed something (for `--print-changes`).
  public func run(
    _ model: inout Model, afterPass: ((_ pass: String, _ before: Model, _ after: Model) -> Void)? = nil
  ) throws(PipelineError) -> PipelineReport {
    var report = PipelineReport()
    let declared = typedIntermediates(model.graph)
    let outputTypes = model.graph.outputs.map { (model.graph[$0].name, model.graph[$0].type) }
    var rewriter = Rewriter(model: model, maxRewrites: maxRewrites)
    rewriter.approximation = approximation
    let clock = ContinuousClock()
    for step in steps {
      if !rewriter.canRewrite {
        report.stoppedAtRewriteLimit = true
        break
      }
      let pass: any Pass
      do { pass = try step.pass.init(options: step.options) } catch {
        throw PipelineError(message: "pass \(step.pass.name): \(error.message)")
      }
      let before = rewriter.model
      let changesBefore = rewriter.changes.count
      rewriter.passName = step.pass.name
      let start = clock.now
      do { try pass.run(&rewriter) } catch {
        throw PipelineError(message: "pass \(step.pass.name) failed: \(error)")
      }
      let seconds = (clock.now - start).seconds
      let changed = rewriter.changes.count - changesBefore
      var cleaned = 0
      if changed > 0 && step.pass.name != EliminateDeadCode.name {
        rewriter.passName = EliminateDeadCode.name
        rewriter.isBudgeted = false
        cleaned = EliminateDeadCode.cleanUp(&rewriter)
        rewriter.isBudgeted = true
      }
      if verifyEach || step.pass.name == steps.last?.pass.name { try verify(rewriter.graph, after: step.pass.name) }
      report.runs.append(PassRun(
        pass: step.pass.name, changes: changed, cleanup: cleaned, seconds: seconds,
        options: step.options.changedFromDefaults))
      if changed > 0 { afterPass?(step.pass.name, before, rewriter.model) }
    }
    if maxRewrites != nil && rewriter.remainingRewrites == 0 { report.stoppedAtRewriteLimit = true }
    try verify(rewriter.graph, after: steps.last?.pass.name ?? "import")
    report.changes = rewriter.changes
    report.warnings = rewriter.warnings
    report.skipped = rewriter.skipped
    model = rewriter.model
    forgetInferredTypes(in: &model.graph, keeping: declared)
    // The outputs' declared types are the model's signature: shape inference may have made a
    // symbolic dim concrete, which would change what the model promises its callers.
    for (position, (name, type)) in outputTypes.enumerated() where position < model.graph.outputs.count {
      let value = model.graph.outputs[position]
      if model.graph[value].name == name { model.graph.updateValue(value) { $0.type = type } }
    }
    return report
  }

  /// The names of intermediate values whose type the model declared (its `value_info`).
  private func typedIntermediates(_ graph: Graph) -> Set<String> {
    var names = Set<String>()
    for value in graph.valueIDs where graph[value].producer != nil && graph[value].type != nil { names.insert(graph[value].name) }
    return names
  }

  /// Clears the types passes inferred for intermediate values the model did not declare, so the
  /// output's `value_info` says what the input's did and no more (graph outputs keep theirs).
  private func forgetInferredTypes(in graph: inout Graph, keeping declared: Set<String>) {
    for value in graph.valueIDs where graph[value].producer != nil && graph[value].type != nil {
      if !declared.contains(graph[value].name) && !graph.isGraphOutput(value) { graph.updateValue(value) { $0.type = nil } }
    }
  }

  private func verify(_ graph: Graph, after pass: String) throws(PipelineError) {
    do { try graph.verify() } catch {
      throw PipelineError(message: "pass \(pass) left an invalid graph: \(error.message)")
    }
  }
}

extension Duration {
  var seconds: Double {
    let (s, attoseconds) = components
    return Double(s) + Double(attoseconds) * 1e-18
  }
}
