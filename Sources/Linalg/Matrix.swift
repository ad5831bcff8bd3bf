/// A dense row-major float32 matrix, the operand type of the LAPACK routines.
public struct Matrix: Equatable, Sendable, CustomStringConvertible {
  public let rows: Int
  public let columns: Int
  /// The elements row by row: element (i, j) is `elements[i * columns + j]`.
  public var elements: [Float]

  public init(rows: Int, columns: Int, elements: [Float]) {
    precondition(
      rows >= 0 && columns >= 0 && rows * columns == elements.count,
      "a \(rows)×\(columns) matrix cannot hold \(elements.count) elements")
    self.rows = rows
    self.columns = columns
    self.elements = elements
  }

  public init(rows: Int, columns: Int, repeating value: Float = 0) {
    self.init(rows: rows, columns: columns, elements: Array(repeating: value, count: rows * columns))
  }

  /// A matrix from its rows, which must all have the same length.
  public init(_ rowArrays: [[Float]]) {
    let columns = rowArrays.first?.count ?? 0
    precondition(rowArrays.allSatisfy { $0.count == columns }, "rows of different lengths")
    self.init(rows: rowArrays.count, columns: columns, elements: rowArrays.flatMap { $0 })
  }

  public static func identity(_ n: Int) -> Matrix {
    var m = Matrix(rows: n, columns: n)
    for i in 0..<n { m.elements[i * n + i] = 1 }
    return m
  }

  public subscript(row: Int, column: Int) -> Float {
    get { elements[row * columns + column] }
    set { elements[row * columns + column] = newValue }
  }

  public var transposed: Matrix {
    var t = [Float](repeating: 0, count: elements.count)
    elements.withUnsafeBufferPointer { a in
      t.withUnsafeMutableBufferPointer { b in
        for i in 0..<rows {
          for j in 0..<columns { b[j * rows + i] = a[i * columns + j] }
        }
      }
    }
    return Matrix(rows: columns, columns: rows, elements: t)
  }

  /// The sub-matrix of the given rows and columns.
  public func submatrix(rows rowRange: Range<Int>, columns columnRange: Range<Int>) -> Matrix {
    precondition(rowRange.lowerBound >= 0 && rowRange.upperBound <= rows, "row range out of bounds")
    precondition(columnRange.lowerBound >= 0 && columnRange.upperBound <= columns, "column range out of bounds")
    var out: [Float] = []
    out.reserveCapacity(rowRange.count * columnRange.count)
    for i in rowRange {
      out.append(contentsOf: elements[(i * columns + columnRange.lowerBound)..<(i * columns + columnRange.upperBound)])
    }
    return Matrix(rows: rowRange.count, columns: columnRange.count, elements: out)
  }

  /// `op(self) · op(other)` through sgemm, where op transposes when asked.
  public func multiplied(by other: Matrix, transposingSelf: Bool = false, transposingOther: Bool = false) -> Matrix {
    let (m, k) = transposingSelf ? (columns, rows) : (rows, columns)
    let (k2, n) = transposingOther ? (other.columns, other.rows) : (other.rows, other.columns)
    precondition(k == k2, "cannot multiply \(m)×\(k) by \(k2)×\(n)")
    var c = Matrix(rows: m, columns: n)
    if m == 0 || n == 0 || k == 0 { return c }
    elements.withUnsafeBufferPointer { a in
      other.elements.withUnsafeBufferPointer { b in
        c.elements.withUnsafeMutableBufferPointer { cp in
          BLAS.sgemm(
            transposeA: transposingSelf, transposeB: transposingOther, m: m, n: n, k: k,
            a: a.baseAddress!, lda: max(1, columns), b: b.baseAddress!, ldb: max(1, other.columns),
            c: cp.baseAddress!, ldc: max(1, n))
        }
      }
    }
    return c
  }

  public static func * (a: Matrix, b: Matrix) -> Matrix { a.multiplied(by: b) }

  /// The largest absolute difference between corresponding elements.
  public func maxAbsoluteDifference(_ other: Matrix) -> Float {
    precondition(rows == other.rows && columns == other.columns, "shapes differ")
    return zip(elements, other.elements).reduce(0) { max($0, abs($1.0 - $1.1)) }
  }

  /// The Frobenius norm.
  public var frobeniusNorm: Float {
    var sum: Double = 0
    for x in elements { sum += Double(x) * Double(x) }
    return Float(sum.squareRoot())
  }

  public var description: String {
    (0..<rows).map { i in (0..<columns).map { j in "\(self[i, j])" }.joined(separator: " ") }
      .joined(separator: "\n")
  }
}
