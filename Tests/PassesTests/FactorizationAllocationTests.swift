import Graph
import GraphTesting
import Runtime
import Testing

@testable import Passes

// The shared factorization framework: budget allocation, rank lists, and helpers the
// factorize-* test files use.

/// What a factorization pass did to a test model.
struct FactorizationOutcome {
  let model: Model
  let report: PipelineReport
}

/// Runs `pass` with `settings` (calibration, budget) through a one-pass pipeline with the verifier.
func runFactorization(
  _ pass: any Pass.Type, options: [String: String] = [:], on input: String, settings: ApproximationSettings = ApproximationSettings()
) throws -> FactorizationOutcome {
  var model = try Model(parsing: input)
  var step = PipelineStep(pass)
  for (key, value) in options.sorted(by: { $0.key < $1.key }) { try step.options.set(key, value) }
  var pipeline = Pipeline(steps: [step], verifyEach: true)
  pipeline.approximation = settings
  let report = try pipeline.run(&model)
  return FactorizationOutcome(model: model, report: report)
}

/// A deterministic m×n matrix of rank `rank` (a product P·Q of seeded factors), row-major.
func lowRankMatrix(_ m: Int, _ n: Int, rank: Int, seed: UInt64 = 3) -> [Float] {
  let p = seededFloats(m * rank, seed: seed), q = seededFloats(rank * n, seed: seed + 1)
  var w = [Float](repeating: 0, count: m * n)
  for i in 0..<m {
    for k in 0..<rank {
      for j in 0..<n { w[i * n + j] += p[i * rank + k] * q[k * n + j] }
    }
  }
  return w
}

/// Seeded floats in [-1, 1].
func seededFloats(_ count: Int, seed: UInt64) -> [Float] {
  var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
  return (0..<count).map { _ in
    state ^= state << 13
    state ^= state >> 7
    state ^= state << 17
    return Float(Int(state % 2001) - 1000) / 1000
  }
}

/// `{a, b, …}` for a textual initializer.
func literal(_ values: [Float]) -> String { "{" + values.map { "\($0)" }.joined(separator: ", ") + "}" }

/// Calibration samples for input `name` of shape `shape`, seeded; `basis` > 0 puts the rows in a
/// `basis`-dimensional subspace of the last axis (data far from isotropic, where whitening pays).
func calibration(_ name: String, shape: [Int], samples: Int, basis: Int = 0, seed: UInt64 = 11) -> Calibration {
  let last = shape.last!, rows = shape.reduce(1, *) / last
  let mix = basis > 0 ? seededFloats(basis * last, seed: seed + 99) : []
  let feeds: [[String: NDArray]] = (0..<samples).map { s in
    var values = seededFloats(shape.reduce(1, *), seed: seed + UInt64(s))
    if basis > 0 {
      let z = seededFloats(rows * basis, seed: seed + 1000 + UInt64(s))
      for r in 0..<rows {
        for j in 0..<last {
          var sum: Float = 0
          for k in 0..<basis { sum += z[r * basis + k] * mix[k * last + j] }
          values[r * last + j] = sum + 0.01 * values[r * last + j]
        }
      }
    }
    return [name: NDArray(values, shape: shape)]
  }
  return Calibration(samples: feeds, isRandom: true, source: "test")
}

/// The largest relative output error of `b` against `a` on seeded inputs.
func outputError(_ a: Model, _ b: Model) throws -> Double {
  let feeds = try seededInputs(for: a)
  let x = try Session(model: a).run(feeds), y = try Session(model: b).run(feeds)
  return x.keys.map { relativeError(x[$0]!, y[$0]!) }.max() ?? 0
}

@Suite struct FactorizationAllocationTests {
  /// A candidate list for one layer: (params, error) pairs.
  func layer(_ options: [(Int, Double)]) -> [Candidate] {
    options.map { p, e in
      Candidate(method: "test", detail: "", params: p, macs: p, weightError: e, outputError: nil) { _, _ in
        Candidate.Outcome(detail: "", params: p, macs: p, weightError: e)
      }
    }
  }

  @Test func maxErrorTakesTheSmallestCandidateUnderTheBound() {
    let choice = allocate(
      candidates: [layer([(10, 0.5), (20, 0.1), (30, 0.01)]), layer([(10, 0.2), (20, 0.3)])], params: [100, 100],
      budget: .maxError(0.2))
    #expect(choice == [1, 0])
    #expect(allocate(candidates: [layer([(10, 0.5)])], params: [100], budget: .maxError(0.1)) == [nil])
  }

  @Test func compressionGivesTheSensitiveLayerMore() {
    // Layer 0 loses much error per parameter, layer 1 little: the budget goes to layer 0.
    let sensitive = layer([(10, 0.9), (20, 0.5), (40, 0.1)]), robust = layer([(10, 0.1), (20, 0.09), (40, 0.08)])
    let choice = allocate(candidates: [sensitive, robust], params: [100, 100], budget: .compression(0.25))
    #expect(choice == [2, 0])
  }

  @Test func compressionStaysWithinTheBudget() {
    let lists = (0..<4).map { l in layer((1...8).map { ($0 * 10, 1 / Double($0 * (l + 1))) }) }
    for r in [0.1, 0.2, 0.35, 0.5] {
      let choice = allocate(candidates: lists, params: [100, 100, 100, 100], budget: .compression(r))
      var spent = 0
      for (c, list) in zip(choice, lists) { spent += c.map { list[$0].params } ?? 100 }
      #expect(spent <= Int(r * 400) || r * 400 < 40, "budget \(r): spent \(spent)")
    }
  }

  @Test func aLayerIsLeftWholeWhenTheBudgetAllows() {
    let choice = allocate(candidates: [layer([(50, 0.5)])], params: [100], budget: .compression(1))
    #expect(choice == [nil])
  }

  @Test func fixedTakesTheFirstCandidate() {
    #expect(allocate(candidates: [layer([(50, 0.5)]), []], params: [100, 100], budget: .fixed) == [0, nil])
  }

  @Test func budgetFromSettings() {
    var settings = ApproximationSettings()
    #expect(FactorizationBudget.from(settings) == .maxError(FactorizationBudget.defaultMaxError))
    settings.maxError = 0.01
    #expect(FactorizationBudget.from(settings) == .maxError(0.01))
    settings.compression = 0.25
    #expect(FactorizationBudget.from(settings) == .compression(0.25))
  }

  @Test func ranksStayBelowBreakEvenInMultiples() throws {
    let model = try Model(parsing: """
      <ir_version: 8, opset_import: ["" : 17]>
      g (float[2,64] x) => (float[2,96] y) <float[64,96] w = \(literal(lowRankMatrix(64, 96, rank: 2)))> { y = MatMul(x, w) }
      """)
    let layer = try #require(EligibleLayer.all(in: model.graph, opTypes: [OpType.matMul], minParams: 1).first)
    #expect(layer.inputs == 64 && layer.outputs == 96 && layer.params == 6144)
    // Break-even: 64·96/160 = 38.4, so r ≤ 38.
    #expect(candidateRanks(layer: layer, multiple: 8) == [8, 16, 24, 32])
    #expect(candidateRanks(layer: layer, multiple: 1).last == 38)
    #expect(candidateRanks(layer: layer, multiple: 64) == Array(1...38))
    #expect(EligibleLayer.all(in: model.graph, opTypes: [OpType.matMul], minParams: 6145).isEmpty)
  }
}
