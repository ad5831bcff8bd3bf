import Graph
import GraphTesting
import Linalg
import Runtime
import Testing

@testable import Passes

@Suite struct FactorizeConvTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"

  /// W[T, S, k, k] = Σ U4[t, r4]·U3[s, r3]·C[r4, r3, ·]: multilinear rank (r3, r4).
  static func tuckerWeight(t: Int, s: Int, taps: Int, r3: Int, r4: Int) -> [Float] {
    let u4 = seededFloats(t * r4, seed: 21), u3 = seededFloats(s * r3, seed: 22), core = seededFloats(r4 * r3 * taps, seed: 23)
    var w = [Float](repeating: 0, count: t * s * taps)
    for o in 0..<t {
      for c in 0..<s {
        for a in 0..<r4 {
          for b in 0..<r3 {
            let f = u4[o * r4 + a] * u3[c * r3 + b]
            for k in 0..<taps { w[(o * s + c) * taps + k] += f * core[(a * r3 + b) * taps + k] }
          }
        }
      }
    }
    return w
  }

  func ops(_ model: Model) -> [String] {
    let g = model.graph
    return (g.topologicalOrder() ?? g.nodeIDs).map { id in
      let n = g[id]
      return ([n.opType] + n.inputs.compactMap { $0 }.compactMap { g.constant($0)?.shape }.map { "\($0)" }).joined(separator: " ")
    }
  }

  func settings() -> ApproximationSettings {
    var s = ApproximationSettings()
    s.minParams = 0
    return s
  }

  func conv(_ w: [Float], t: Int = 16, s: Int = 12, attributes: String = "pads = [1, 1, 1, 1], strides = [2, 2]", out: Int = 5) -> String {
    """
    \(header)
    g (float[1,\(s),9,9] x) => (float[1,\(t),\(out),\(out)] y) <float[\(t),\(s),3,3] w = \(literal(w)), float[\(t)] b = \(literal(seededFloats(t, seed: 4)))> {
      y = Conv<\(attributes)>(x, w, b)
    }
    """
  }

  /// EVBMF (ranks=vbmf) finds the multilinear rank of a low-rank kernel under small noise, from the
  /// weight alone.
  @Test func vbmfFindsTheRanksUnderNoise() throws {
    let clean = Self.tuckerWeight(t: 16, s: 12, taps: 9, r3: 3, r4: 4)
    let scale = clean.map { abs($0) }.max()!
    let noise = seededFloats(clean.count, seed: 77)
    let w = zip(clean, noise).map { $0 + 0.002 * scale * $1 }
    let input = conv(w)
    let outcome = try runFactorization(FactorizeConv.self, options: ["ranks": "vbmf"], on: input, settings: settings())
    let change = try #require(outcome.report.changes.first { $0.pass == FactorizeConv.name })
    #expect(change.metrics["rank_in"] == 3 && change.metrics["rank_out"] == 4)
    #expect((change.metrics["weight_error"] ?? 1) < 0.01)
  }

  @Test func aLowMultilinearRankKernelIsRecoveredExactly() throws {
    let input = conv(Self.tuckerWeight(t: 16, s: 12, taps: 9, r3: 3, r4: 4))
    let outcome = try runFactorization(FactorizeConv.self, options: ["energy": "1"], on: input, settings: settings())
    #expect(ops(outcome.model) == ["Conv [3, 12, 1, 1]", "Conv [4, 3, 3, 3]", "Conv [16, 4, 1, 1] [16]"])
    try expectSameOutputs(try Model(parsing: input), outcome.model, tolerance: 1e-4)
    let change = try #require(outcome.report.changes.first { $0.pass == FactorizeConv.name })
    #expect(change.metrics["rank_in"] == 3 && change.metrics["rank_out"] == 4)
    #expect(change.metrics["params_before"] == 1728 && change.metrics["params_after"] == 36 + 108 + 64)
    #expect((change.metrics["weight_error"] ?? 1) < 1e-5)
    // MACs: the first 1×1 at the 9×9 input, the rest at the 5×5 output.
    #expect(change.metrics["macs_after"] == Double(81 * 36 + 25 * (108 + 64)))
  }

  @Test func theEnergyRuleKeepsTheRequestedFraction() {
    #expect(TuckerModes.energyRank([3, 2, 1, 0.1], fraction: 0.9) == 2)  // 13/14.01 = 0.93
    #expect(TuckerModes.energyRank([3, 2, 1, 0.1], fraction: 0.95) == 3)
    #expect(TuckerModes.energyRank([1, 0], fraction: 1) == 1)
  }

  @Test func errorFallsAsTheBudgetGrows() throws {
    let input = conv(seededFloats(16 * 12 * 9, seed: 5))
    var errors: [Double] = [], params: [Double] = []
    for r in [0.3, 0.5, 0.8] {
      var s = settings()
      s.compression = r
      let outcome = try runFactorization(FactorizeConv.self, on: input, settings: s)
      let change = try #require(outcome.report.changes.first)
      params.append(try #require(change.metrics["params_after"]))
      errors.append(try #require(change.metrics["weight_error"]))
    }
    #expect(params == params.sorted() && params.last! <= 0.8 * 1728, "\(params)")
    #expect(errors == errors.sorted(by: >) && errors.first! > errors.last!, "\(errors)")
  }

  @Test func calibrationRefitsTheLastConv() throws {
    let input = conv(seededFloats(16 * 12 * 9, seed: 5))
    var s = settings()
    s.calibration = calibration("x", shape: [1, 12, 9, 9], samples: 8)
    let outcome = try runFactorization(FactorizeConv.self, options: ["energy": "0.8"], on: input, settings: s)
    let change = try #require(outcome.report.changes.first)
    let hosvd = try #require(change.metrics["fit_error_hosvd"]), refit = try #require(change.metrics["fit_error"])
    #expect(refit < hosvd && change.metrics["refit"] == 1, "\(refit) vs \(hosvd)")
  }

  // MARK: Guards

  @Test func aGroupedConvIsLeftAlone() throws {
    let input = """
      \(header)
      g (float[1,12,9,9] x) => (float[1,16,9,9] y) <float[16,6,3,3] w = \(literal(seededFloats(16 * 6 * 9, seed: 5)))> {
        y = Conv<group = 2, pads = [1, 1, 1, 1]>(x, w)
      }
      """
    #expect(try runFactorization(FactorizeConv.self, on: input, settings: settings()).report.changes.isEmpty)
  }

  @Test func aPointwiseConvIsLeftAlone() throws {
    let input = """
      \(header)
      g (float[1,12,9,9] x) => (float[1,16,9,9] y) <float[16,12,1,1] w = \(literal(seededFloats(16 * 12, seed: 5)))> {
        y = Conv(x, w)
      }
      """
    #expect(try runFactorization(FactorizeConv.self, options: ["energy": "0.5"], on: input, settings: settings()).report.changes.isEmpty)
  }

  @Test func aFullRankKernelAtFullEnergyIsLeftAlone() throws {
    // Keeping every component costs more than the conv: no saving, no rewrite.
    let input = conv(seededFloats(16 * 12 * 9, seed: 5))
    #expect(try runFactorization(FactorizeConv.self, options: ["energy": "1"], on: input, settings: settings()).report.changes.isEmpty)
  }

  @Test func aWeightThatIsAGraphInputIsLeftAlone() throws {
    let w = Self.tuckerWeight(t: 16, s: 12, taps: 9, r3: 3, r4: 4)
    let input = """
      \(header)
      g (float[1,12,9,9] x, float[16,12,3,3] w) => (float[1,16,9,9] y) <float[16,12,3,3] w = \(literal(w))> {
        y = Conv<pads = [1, 1, 1, 1]>(x, w)
      }
      """
    #expect(try runFactorization(FactorizeConv.self, options: ["energy": "1"], on: input, settings: settings()).report.changes.isEmpty)
  }
}
