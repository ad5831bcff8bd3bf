import Graph
import Linalg

/// Replaces a layer with a constant weight by two thinner ones of rank r (truncated SVD).
///
///     y = MatMul(x, W)              W: m×n         h = MatMul(x, A)   A: m×r
///                                             →    y = MatMul(h, B)   B: r×n
///     y = Gemm(x, W, c)                            h = MatMul(x, A);  y = Gemm(h, B, c)
///     y = Conv(x, W, b)   W: [M, C, k, k]          h = Conv(x, A: [r, C, k, k])  (strides, pads kept)
///                                                  y = Conv(h, B: [M, r, 1, 1], b)
///
/// W (as y = x·W, d_in × d_out; a Conv's [M, C·k·k] transposed, METHODS §4.2 channel
/// decomposition) is approximated by A·B. Without calibration data A = U_r Σ_r^½, B = Σ_r^½ V_rᵀ
/// from W's SVD, with relative weight error √(Σ_{i≥r} σ_i²)/‖W‖. With calibration data the fit is
/// the whitened SVD (METHODS §5.1): with X̂ the layer's inputs in the model rewritten so far
/// (a Conv's im2col patches), Y its outputs in the original model and X̂ᵀX̂ + δI = L·Lᵀ,
/// `W' = L⁻ᵀ·trunc_r(Lᵀ·W*)`, which minimizes ‖Y − X̂·W'‖ over rank-r W' (W* is the ridge
/// regression of Y on X̂, pulled towards W).
///
/// The rank comes from `rank`, or from the budget: `--compression R` keeps R of the eligible
/// layers' parameters, allocated greedily by error reduction per parameter; `--max-error E` gives
/// each layer the smallest rank whose relative error is at most E (default 0.05). Ranks are
/// multiples of 8 (`--rank-multiple`) below the break-even r·(d_in + d_out) < d_in·d_out, so a
/// rewrite always saves parameters and MACs.
///
/// Conditions: MatMul with a 2-D weight, Gemm with transA 0, Conv with group 1; the weight a
/// float32 initializer (not a graph input) of at least `--min-params` elements.
public struct FactorizeSVD: Pass {
  public static let name = "factorize-svd"
  public static let summary = "Replace large MatMul, Gemm and Conv layers by two rank-r layers (whitened SVD with calibration)"
  public static let isExact = false
  public static let isDefault = false
  public static let preset: Preset? = .thin
  public static let options: [PassOption] = [
    PassOption("rank", .int, default: "0", "the rank of every factorized layer (0: from the budget)"),
    PassOption("fit", .string, default: "auto", "auto (whitened with calibration data) or weight (weight error only)"),
  ]

  let rank: Int
  let weightOnly: Bool

  public init(options: PassOptions) throws(PassOptionError) {
    rank = options.int("rank")
    guard rank >= 0 else { throw PassOptionError("factorize-svd.rank must be 0 or more") }
    switch options.string("fit") {
    case "auto": weightOnly = false
    case "weight": weightOnly = true
    case let other: throw PassOptionError("factorize-svd.fit is auto or weight, not '\(other)'")
    }
  }

  public func run(_ rewriter: inout Rewriter) throws {
    let multiple = rewriter.approximation.rankMultiple
    try Factorization.run(
      &rewriter, pattern: "low-rank", opTypes: [OpType.matMul, OpType.gemm, OpType.conv],
      budget: rank > 0 ? .fixed : nil
    ) { layer, statistics in
      try candidates(for: layer, statistics: statistics, multiple: multiple)
    }
  }

  /// One candidate per rank, with the error predicted from the singular values.
  func candidates(for layer: EligibleLayer, statistics: LayerStatistics?, multiple: Int) throws -> [Candidate] {
    let ranks = rank > 0 ? [rank] : candidateRanks(layer: layer, multiple: multiple)
    guard !ranks.isEmpty else { return [] }
    let fit = try LowRankFit(weight: layer.matrix, statistics: weightOnly ? nil : statistics)
    let method = fit.isWhitened ? "whitened svd" : "svd"
    return ranks.map { r in
      let params = r * (layer.inputs + layer.outputs)
      return Candidate(
        method: method, detail: "rank \(r)", params: params, macs: layer.positions * params,
        weightError: fit.isWhitened ? .nan : fit.predictedError(rank: r),
        outputError: fit.isWhitened ? fit.predictedError(rank: r) : nil
      ) { rewriter, fresh in
        let refit = fresh != nil && fit.isWhitened ? try LowRankFit(weight: layer.matrix, statistics: fresh) : fit
        let (a, b) = try refit.factors(rank: r)
        try layer.rewriteLowRank(a: a, b: b, &rewriter)
        let measured = fresh ?? statistics
        return Candidate.Outcome(
          detail: "rank \(r)", params: params, macs: layer.positions * params,
          weightError: relativeWeightError(layer.matrix, a: a, b: b),
          outputError: measured?.relativeOutputError(a: a, b: b), metrics: ["rank": Double(r)],
          approximation: a.multiplied(by: b))
      }
    }
  }
}
