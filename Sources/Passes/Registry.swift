import Graph

/// A pass list or option the user asked for that names no pass or option.
public struct PassSelectionError: Error, CustomStringConvertible, Equatable {
  public let message: String
  public init(message: String) { self.message = message }
  public var description: String { message }
}

/// Every pass rebirth has, in pipeline order.
public enum PassRegistry {
  /// The registration list; the default pipeline runs these in this order.
  public static let all: [any Pass.Type] = [
    // Cleanup first: later patterns match more when no-ops and dead branches are gone.
    EliminateIdentity.self,
    EliminateDeadCode.self,
    // Constants next, once no-ops are gone: later patterns (fold-batchnorm, merges) see weights
    // as initializers rather than Constant nodes or small constant subgraphs.
    FoldConstants.self,
    // After fold-constants, which has turned Constant-node shape pieces into initializers this
    // pass reads; it folds its own small shape arithmetic, so it also works alone.
    FoldShapeChains.self,
    // Merges after the no-ops are gone (a Transpose pair split by an Identity is a pair again):
    // reshape and transpose chains first, then cse, which then sees the chains' single survivors.
    MergeReshapes.self,
    MergeTransposes.self,
    MergeSlices.self,  // Slice chains on other axes: after the shape chains folded their constants
    EliminateCommonSubexpressions.self,
    // Folding, after cleanup (an Identity between a Conv and its BatchNorm is gone): fold-pad first
    // (a Pad only folds into the window op right after it), then BatchNorms, then the constant
    // Mul/Add/Sub/Div left over (exported BatchNorms, and the Mul+Add fold-batchnorm makes).
    FoldPad.self,
    FoldBatchNorm.self,
    FoldAffine.self,
    // After the folding passes, so BatchNorms and affines already sit inside the convs it merges;
    // before branch-slim, which then stacks the merged layers' siblings.
    StreamSlim.self,
    // Approximate (off by default, preset slim). stream-slim-fit after stream-slim, so the exact
    // merges are made first and the fits start from them.
    StreamSlimFit.self,
    // branch-slim-fit before branch-slim: the k×k conv it fits on an Inception block's input is
    // then stacked exactly with the block's other convs on that input by branch-slim.
    BranchSlimFit.self,
    // Off by default (it writes contrib operators). After cleanup, folding and cse, which simplify
    // the attention blocks it swallows whole; before branch-slim, which would stack the Q, K, V
    // projections into one MatMul and a Split that the pattern does not read.
    FuseAttention.self,
    // After the folding passes (and stream-slim), so the siblings it stacks have their BatchNorms
    // and affines folded in already; before fuse-activation, which then fuses the one kept Relu.
    BranchSlim.self,
    // Last exact pass: every fold and merge above matches standard-domain layers only, and a fused
    // layer is in the ai.rebirth domain; after branch-slim, so a merged layer's one kept Relu fuses.
    FuseActivation.self,
    // Factorization last (approximate, off by default, preset thin): after every exact pass and
    // the fitted slimming, so it factorizes the layers that survive, at their final shapes.
    FactorizeSVD.self,
    // deepthin right after svd: with both on, it sees only the layers svd left whole.
    FactorizeDeepThin.self,
    // The other factorizations after factorize-svd, Tucker-2 (convs only) after Kronecker (linear
    // layers only); a later one also sees the factors an earlier one made, so enable one at a time.
    FactorizeKronecker.self,
    FactorizeConv.self,
    // prune after every factorization: it thins what is left dense (a factor's weights included).
    Prune.self,
  ]

  public static func named(_ name: String) -> (any Pass.Type)? {
    all.first { $0.name == name }
  }

  /// The passes the default pipeline runs for ONNX output.
  public static var defaults: [any Pass.Type] { all.filter { $0.isDefault } }

  /// Parses a comma-separated `--passes` list; `none` is the empty list.
  public static func select(_ list: String) throws(PassSelectionError) -> [any Pass.Type] {
    let names = list.split(separator: ",").map { String($0).trimmingCharacters(in: " ") }.filter { !$0.isEmpty }
    if names == ["none"] { return [] }
    guard !names.isEmpty else { throw PassSelectionError(message: "--passes needs a pass name or 'none'") }
    return try names.map { (name) throws(PassSelectionError) in try pass(named: name) }
  }

  /// The pass called `name`, or an error that suggests the nearest name.
  public static func pass(named name: String) throws(PassSelectionError) -> any Pass.Type {
    if let pass = named(name) { return pass }
    var message = "unknown pass '\(name)'"
    if let near = nearestName(to: name, among: all.map { $0.name } + ["none"]) { message += "; did you mean '\(near)'?" }
    message += " ('rebirth passes' lists them)"
    throw PassSelectionError(message: message)
  }

  /// The passes a preset turns on for `target`, in pipeline order.
  public static func passes(for preset: Preset, target: OutputTarget) -> [any Pass.Type] {
    all.filter { pass in
      if pass.isDefault(for: target) { return true }
      guard let p = pass.preset, p != .exact else { return false }
      return p <= preset
    }
  }

  /// The pipeline the `optimize` flags describe.
  ///
  /// `passes` (the `--passes` list) is exact and excludes `preset`, `enable` and `disable`;
  /// otherwise the preset's passes, plus `enable`, minus `disable`, in registry order. Each of
  /// `options` is `PASS.KEY=VALUE` and must name a pass of the pipeline and one of its options.
  public static func plan(
    passes list: String? = nil, preset: Preset = .exact, enable: [String] = [], disable: [String] = [],
    options: [String] = [], target: OutputTarget = .onnx
  ) throws(PassSelectionError) -> [PipelineStep] {
    var chosen: [any Pass.Type]
    if let list {
      guard preset == .exact, enable.isEmpty, disable.isEmpty else {
        throw PassSelectionError(message: "--passes lists the passes exactly; it cannot be combined with --preset, --enable or --disable")
      }
      chosen = try select(list)
    } else {
      let on = try Set(enable.flatMap(splitNames).map { (n) throws(PassSelectionError) in try pass(named: n).name })
      let off = try Set(disable.flatMap(splitNames).map { (n) throws(PassSelectionError) in try pass(named: n).name })
      if let both = on.intersection(off).sorted().first {
        throw PassSelectionError(message: "pass '\(both)' is both enabled and disabled")
      }
      let base = Set(passes(for: preset, target: target).map { $0.name })
      chosen = all.filter { (base.contains($0.name) || on.contains($0.name)) && !off.contains($0.name) }
    }
    if target != .onnxContribOps, let contrib = chosen.first(where: { $0.requiresContribOps }) {
      throw PassSelectionError(
        message: "pass '\(contrib.name)' writes onnxruntime's com.microsoft contrib ops: "
          + (target == .tmf ? ".tmf cannot store them" : "add --allow-contrib-ops"))
    }
    var steps = chosen.map { PipelineStep($0) }
    for option in options {
      let (passName, key, value) = try parseOption(option)
      _ = try pass(named: passName)
      guard let index = steps.firstIndex(where: { $0.pass.name == passName }) else {
        throw PassSelectionError(message: "--pass-option \(option): pass '\(passName)' is not in this pipeline (add it with --enable)")
      }
      do { try steps[index].options.set(key, value) } catch {
        throw PassSelectionError(message: "--pass-option \(option): \(error.message)")
      }
    }
    return steps
  }

  private static func splitNames(_ list: String) -> [String] {
    list.split(separator: ",").map { String($0).trimmingCharacters(in: " ") }.filter { !$0.isEmpty }
  }

  private static func parseOption(_ text: String) throws(PassSelectionError) -> (String, String, String) {
    guard let eq = text.firstIndex(of: "="), let dot = text[..<eq].lastIndex(of: ".") else {
      throw PassSelectionError(message: "--pass-option wants PASS.KEY=VALUE, not '\(text)'")
    }
    let pass = String(text[..<dot]), key = String(text[text.index(after: dot)..<eq])
    let value = String(text[text.index(after: eq)...])
    guard !pass.isEmpty, !key.isEmpty else {
      throw PassSelectionError(message: "--pass-option wants PASS.KEY=VALUE, not '\(text)'")
    }
    return (pass, key, value)
  }
}

/// The name among `candidates` closest to `name` by edit distance, if reasonably close.
func nearestName(to name: String, among candidates: [String]) -> String? {
  let scored = candidates.map { ($0, editDistance($0, name)) }
  guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, name.count / 3) else { return nil }
  return best.0
}

/// Levenshtein distance between two strings.
func editDistance(_ a: String, _ b: String) -> Int {
  let a = Array(a), b = Array(b)
  guard !a.isEmpty else { return b.count }
  guard !b.isEmpty else { return a.count }
  var previous = Array(0...b.count)
  for i in 1...a.count {
    var current = [i] + Array(repeating: 0, count: b.count)
    for j in 1...b.count {
      current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.count]
}

extension String {
  fileprivate func trimmingCharacters(in set: Character) -> String {
    String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
  }
}
