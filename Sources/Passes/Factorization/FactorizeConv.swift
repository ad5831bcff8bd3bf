import Graph
import Linalg

/// Tucker-2 for k×k convolutions (Kim et al., METHODS §4.3): the channel modes are factored, the
/// spatial ones kept.
///
///     y = Conv(x, W[T, S, kh, kw], b)  (strides, pads, dilations)
///  →  h1 = Conv(x, U3ᵀ as [R3, S, 1, 1])                 1×1, at the input resolution
///     h2 = Conv(h1, C[R4, R3, kh, kw])                   the original strides, pads, dilations
///     y  = Conv(h2, U4 as [T, R4, 1, 1], b)
///
///     W[t, s, ·] ≈ Σ_{r3, r4} U4[t, r4]·U3[s, r3]·C[r4, r3, ·]   (exact when R3, R4 reach the
///     ranks of the mode-s and mode-t unfoldings; padding commutes with the bias-free 1×1)
///
/// HOSVD: U4 and U3 are the leading left singular vectors of the unfoldings W_(t) (T × S·k²) and
/// W_(s) (S × T·k²), C = W ×_t U4ᵀ ×_s U3ᵀ. Ranks by the energy rule (METHODS §4.5): the smallest
/// R keeping `energy` of each unfolding's squared singular values; or, with `ranks=vbmf`, by EVBMF
/// on each unfolding (Kim et al.'s data-free choice, METHODS §4.3; ``EVBMF``). With
/// `--compression` or `--max-error` the budget picks among the ranks of several energy levels
/// instead. With calibration data (`refit`), the last 1×1 is refitted by least squares on the
/// layer's patches (METHODS §5.3): U4ᵀ = argmin ‖Y − X̂·M12·U4ᵀ‖² + λ‖U4‖², M12 the first two convs
/// as one linear map; kept only when it lowers the output error on the fitting rows.
///
/// Cost: parameters S·R3 + k²·R3·R4 + R4·T against k²·S·T; MACs S·R3·H·W + (k²·R3·R4 + R4·T)·H'·W'.
/// Conditions: Conv with group 1, a 2-D kernel larger than 1×1, auto_pad NOTSET, constant weight;
/// applied only when parameters and MACs both drop.
struct FactorizeConv: Pass {
  static let name = "factorize-conv"
  static let summary = "Tucker-2: split k×k convs into 1×1 → k×k core → 1×1 (ranks by singular value energy or EVBMF)"
  static let isExact = false
  static let isDefault = false
  static let preset: Preset? = nil  // --enable only: `thin` runs factorize-svd, the method that wins post-training (docs/passes.md)
  static let options = [
    PassOption("energy", .float, default: "0.9", "fraction of each unfolding's singular value energy kept (without --compression/--max-error)"),
    PassOption("ranks", .string, default: "energy", "how ranks are chosen without a budget: energy (the energy option) or vbmf (EVBMF per unfolding)"),
    PassOption("refit", .bool, default: "true", "refit the last 1×1 by least squares on calibration data"),
  ]

  /// The energy levels offered to a budget.
  static let levels: [Double] = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 0.995]

  let energy: Double, refit: Bool, vbmf: Bool

  init(options: PassOptions) throws(PassOptionError) {
    energy = options.float("energy")
    refit = options.bool("refit")
    guard energy > 0, energy <= 1 else { throw PassOptionError("factorize-conv.energy must be in (0, 1]") }
    let rule = options.string("ranks")
    guard ["energy", "vbmf"].contains(rule) else {
      throw PassOptionError("factorize-conv.ranks is energy or vbmf, not '\(rule)'")
    }
    vbmf = rule == "vbmf"
  }

  func run(_ rewriter: inout Rewriter) throws {
    rewriter.inferShapes()
    let graph = rewriter.graph, settings = rewriter.approximation
    let byBudget = settings.compression != nil || settings.maxError != nil
    try Factorization.run(&rewriter, pattern: "TuckerTwo", opTypes: [OpType.conv], budget: byBudget ? nil : .fixed) {
      layer, _ in
      guard case .conv(let kernel) = layer.kind, kernel.count == 2, kernel.reduce(1, *) > 1,
        (layer.node.attribute("auto_pad")?.string ?? "NOTSET") == "NOTSET"
      else { return [] }
      let modes = try TuckerModes(
        weight: layer.matrix.transposed.elements, outChannels: layer.outputs, inChannels: layer.inputs / kernel.reduce(1, *),
        taps: kernel.reduce(1, *))
      let inPositions = Self.inputPositions(layer, in: graph)
      let ranks =
        byBudget ? Self.levels.map { modes.ranks(energy: $0) } : [vbmf ? modes.vbmfRanks : modes.ranks(energy: energy)]
      var seen = Set<[Int]>()
      return ranks.compactMap { r3, r4 in
        guard seen.insert([r3, r4]).inserted else { return nil }
        let tucker = modes.decomposition(r3: r3, r4: r4)
        let norm = Double(layer.matrix.frobeniusNorm)
        let error = norm > 0 ? Double(frobeniusDistance(layer.matrix, tucker.matrix())) / norm : 0
        let macs = Self.macs(tucker, inPositions: inPositions, outPositions: layer.positions)
        let refit = self.refit
        return Candidate(
          method: "tucker2", detail: "ranks \(r3), \(r4)", params: tucker.params, macs: macs, weightError: error, outputError: nil,
          apply: { rewriter, statistics in
            try Self.apply(tucker, to: layer, weightError: error, macs: macs, refit: refit, &rewriter, statistics)
          })
      }
    }
  }

  static func macs(_ t: TuckerTwo, inPositions: Int, outPositions: Int) -> Int {
    inPositions * t.u3.rows * t.r3 + outPositions * (t.core.elements.count + t.r4 * t.u4.rows)
  }

  /// N·H·W of the conv's input (the output positions times the strides when the shape is unknown).
  static func inputPositions(_ layer: EligibleLayer, in graph: Graph) -> Int {
    if let dims = graph.shape(of: layer.node.input(0)), dims.count == 4 {
      let values = [dims[0], dims[2], dims[3]].map { $0.value ?? 1 }
      if values.allSatisfy({ $0 >= 1 && $0 < 1 << 24 }) { return values.reduce(1, *) }
    }
    let strides = layer.node.attribute("strides")?.ints?.map(Int.init) ?? []
    return layer.positions * max(1, strides.reduce(1, *))
  }

  private static func apply(
    _ start: TuckerTwo, to layer: EligibleLayer, weightError: Double, macs: Int, refit: Bool, _ rewriter: inout Rewriter,
    _ statistics: LayerStatistics?
  ) throws -> Candidate.Outcome {
    var tucker = start, error = weightError
    var metrics: [String: Double] = ["rank_in": Double(tucker.r3), "rank_out": Double(tucker.r4)]
    var outputError = statistics?.relativeOutputError(of: tucker.matrix())
    if refit, let s = statistics, let before = outputError {
      let phi = s.inputs.multiplied(by: tucker.firstTwo())
      let trace = phi.elements.reduce(0.0) { $0 + Double($1) * Double($1) }
      if let u4t = try? Matrix.ridgeLeastSquares(phi, s.targets, lambda: Float(max(1e-6 * trace / Double(max(phi.columns, 1)), 1e-12))) {
        var candidate = tucker
        candidate.u4 = u4t.transposed
        let after = s.relativeOutputError(of: candidate.matrix())
        metrics["fit_error_hosvd"] = before
        if after < before {
          tucker = candidate
          outputError = after
          let norm = Double(layer.matrix.frobeniusNorm)
          error = norm > 0 ? Double(frobeniusDistance(layer.matrix, tucker.matrix())) / norm : 0
          metrics["refit"] = 1
        }
      }
    }
    try rewrite(layer, tucker, &rewriter)
    return Candidate.Outcome(
      detail: "ranks \(tucker.r3), \(tucker.r4)", params: tucker.params, macs: macs, weightError: error, outputError: outputError,
      metrics: metrics, approximation: tucker.matrix())
  }

  /// Inserts the 1×1 and k×k convs before the layer and turns the layer into the last 1×1.
  private static func rewrite(_ layer: EligibleLayer, _ t: TuckerTwo, _ rewriter: inout Rewriter) throws {
    guard case .conv(let kernel) = layer.kind, let x = layer.node.input(0) else { return }
    let node = layer.node, s = t.u3.rows
    let base = node.name.isEmpty ? rewriter.graph[layer.weight].name : node.name
    let one = Attribute("kernel_shape", .ints([1, 1]))
    let w1 = rewriter.addInitializer(base + "_tucker_in", Tensor(floats: t.u3.transposed.elements, shape: [t.r3, s, 1, 1]))
    let c1 = try rewriter.addNode(OpType.conv, name: base + "_tucker_in", inputs: [x, w1], attributes: [one])
    let w2 = rewriter.addInitializer(base + "_tucker_core", Tensor(floats: t.core.elements, shape: [t.r4, t.r3] + kernel))
    let attributes = node.attributes.filter { $0.name != "group" }
    let c2 = try rewriter.addNode(
      OpType.conv, name: base + "_tucker_core", inputs: [rewriter.graph[c1].output(0), w2], attributes: attributes)
    let w3 = rewriter.addInitializer(base + "_tucker_out", Tensor(floats: t.u4.elements, shape: [t.u4.rows, t.r4, 1, 1]))
    rewriter.setInput(0, of: node.id, to: rewriter.graph[c2].output(0))
    rewriter.setInput(1, of: node.id, to: w3)
    try rewriter.setAttributes(of: node.id, [one])
  }
}

/// ‖a − b‖_F.
func frobeniusDistance(_ a: Matrix, _ b: Matrix) -> Float {
  var sum = 0.0
  for i in a.elements.indices {
    let d = Double(a.elements[i]) - Double(b.elements[i])
    sum += d * d
  }
  return Float(sum.squareRoot())
}
