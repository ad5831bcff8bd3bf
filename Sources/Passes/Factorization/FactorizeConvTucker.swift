import Linalg

/// The Tucker-2 decomposition of a conv weight W[T, S, kh, kw] over its two channel modes
/// (METHODS §4.3), by HOSVD: U4 (T × R4) and U3 (S × R3) are the leading left singular vectors of
/// the mode-t unfolding W_(t) (T × S·k²) and the mode-s unfolding W_(s) (S × T·k²), and the core
/// C[r4, r3, ·] = Σ_t Σ_s U4[t, r4]·U3[s, r3]·W[t, s, ·].
struct TuckerModes {
  let outChannels: Int, inChannels: Int, taps: Int
  /// W_(t), T × S·k² (row t holds W[t, ·, ·, ·]).
  let unfoldingT: Matrix
  let svdT: SingularValueDecomposition
  let svdS: SingularValueDecomposition

  /// `weight` is the conv weight flattened in ONNX order [T, S, kh, kw].
  init(weight: [Float], outChannels t: Int, inChannels s: Int, taps: Int) throws {
    (outChannels, inChannels, self.taps) = (t, s, taps)
    unfoldingT = Matrix(rows: t, columns: s * taps, elements: weight)
    var modeS = Matrix(rows: s, columns: t * taps)
    for o in 0..<t {
      for c in 0..<s {
        for k in 0..<taps { modeS.elements[c * t * taps + o * taps + k] = weight[(o * s + c) * taps + k] }
      }
    }
    svdT = try unfoldingT.singularValueDecomposition()
    svdS = try modeS.singularValueDecomposition()
  }

  /// The smallest rank keeping `fraction` of the unfolding's singular value energy.
  static func energyRank(_ values: [Float], fraction: Double) -> Int {
    let energy = values.map { Double($0) * Double($0) }, total = energy.reduce(0, +)
    guard total > 0 else { return 1 }
    var kept = 0.0
    for (i, e) in energy.enumerated() {
      kept += e
      if kept >= fraction * total * (1 - 1e-9) { return i + 1 }
    }
    return energy.count
  }

  /// (R3, R4) chosen by EVBMF on the mode-s and mode-t unfoldings (METHODS §4.3).
  var vbmfRanks: (Int, Int) {
    let cross = taps
    return (
      EVBMF.rank(singularValues: svdS.singularValues, rows: inChannels, columns: outChannels * cross),
      EVBMF.rank(singularValues: svdT.singularValues, rows: outChannels, columns: inChannels * cross)
    )
  }

  /// (R3, R4) for an energy fraction: R3 from the mode-s unfolding, R4 from the mode-t one.
  func ranks(energy fraction: Double) -> (Int, Int) {
    (Self.energyRank(svdS.singularValues, fraction: fraction), Self.energyRank(svdT.singularValues, fraction: fraction))
  }

  func decomposition(r3: Int, r4: Int) -> TuckerTwo {
    let u4 = svdT.u.submatrix(rows: 0..<outChannels, columns: 0..<r4)
    let u3 = svdS.u.submatrix(rows: 0..<inChannels, columns: 0..<r3)
    // P = U4ᵀ·W_(t): R4 × S·k², then the core row r4 = U3ᵀ·P_r4 (R3 × k²).
    let p = u4.multiplied(by: unfoldingT, transposingSelf: true)
    var core = Matrix(rows: r4, columns: r3 * taps)
    for r in 0..<r4 {
      let pr = Matrix(rows: inChannels, columns: taps, elements: Array(p.elements[(r * inChannels * taps)..<((r + 1) * inChannels * taps)]))
      let cr = u3.multiplied(by: pr, transposingSelf: true)
      core.elements.replaceSubrange((r * r3 * taps)..<((r + 1) * r3 * taps), with: cr.elements)
    }
    return TuckerTwo(u3: u3, core: core, u4: u4, taps: taps)
  }
}

/// A Tucker-2 factorization: conv 1×1 S→R3 (U3ᵀ), conv k×k R3→R4 (core), conv 1×1 R4→T (U4).
struct TuckerTwo {
  /// S × R3.
  let u3: Matrix
  /// R4 × R3·k², the k×k conv's weight [R4, R3, kh, kw] flattened.
  let core: Matrix
  /// T × R4.
  var u4: Matrix
  let taps: Int

  var r3: Int { u3.columns }
  var r4: Int { u4.columns }
  var params: Int { u3.rows * r3 + core.elements.count + u4.rows * r4 }

  /// The first two convs as one linear map of the input patches: S·k² × R4, row (s, tap).
  func firstTwo() -> Matrix {
    let s = u3.rows
    var q = Matrix(rows: r4, columns: s * taps)
    for r in 0..<r4 {
      let cr = Matrix(rows: r3, columns: taps, elements: Array(core.elements[(r * r3 * taps)..<((r + 1) * r3 * taps)]))
      let qr = u3.multiplied(by: cr)  // S × k²
      q.elements.replaceSubrange((r * s * taps)..<((r + 1) * s * taps), with: qr.elements)
    }
    return q.transposed
  }

  /// The reconstructed weight as the framework's d_in × d_out matrix (S·k² × T).
  func matrix() -> Matrix { firstTwo().multiplied(by: u4, transposingOther: true) }
}
