import Foundation
import Graph
import Testing

@testable import Runtime

/// Small files written by NumPy 2.4 (`np.save`, `numpy.lib.format.write_array`, `np.savez`,
/// `np.savez_compressed`), base64-encoded.
private enum NumPyWritten {
  static func bytes(_ base64: String) -> [UInt8] { Array(Data(base64Encoded: base64)!) }

  static let littleFloat = bytes("k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAACAPgAAAD8AAEA/AACAPwAAoD8=")
  static let bigFloat = bytes("k05VTVBZAQB2AHsnZGVzY3InOiAnPmY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAPoAAAD8AAAA/QAAAP4AAAD+gAAA=")
  static let bigInt64 = bytes("k05VTVBZAQB2AHsnZGVzY3InOiAnPmk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAAAf/////////+AAAARdlkuAA=")
  static let bigHalf = bytes("k05VTVBZAQB2AHsnZGVzY3InOiAnPmYyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAo+ALQAe/8=")
  static let bigUInt16 = bytes("k05VTVBZAQB2AHsnZGVzY3InOiAnPnUyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAQIB//8=")
  static let version2 = bytes("k05VTVBZAgB0AAAAeydkZXNjcic6ICc8aTQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMiksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAAAAgAAAAMAAAAEAAAA")
  static let version3 = bytes("k05VTVBZAwB0AAAAeydkZXNjcic6ICd8YjEnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMywpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAE=")
  static let fortran = bytes("k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBUcnVlLCAnc2hhcGUnOiAoMiwgMiksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAAQAAAgD8AAEBA")
  static let pickled = bytes("k05VTVBZAQB2AHsnZGVzY3InOiAnfE8nLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqABJWQAAAAAAAAAIwWbnVtcHkuX2NvcmUubXVsdGlhcnJheZSMDF9yZWNvbnN0cnVjdJSTlIwFbnVtcHmUjAduZGFycmF5lJOUSwCFlEMBYpSHlFKUKEsBSwKFlGgDjAVkdHlwZZSTlIwCTziUiYiHlFKUKEsDjAF8lE5OTkr/////Sv////9LP3SUYoldlChLAYwBYZRldJRiLg==")
  static let complex = bytes("k05VTVBZAQB2AHsnZGVzY3InOiAnPGM4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIA/AAAAQA==")
  static let unicode = bytes("k05VTVBZAQB2AHsnZGVzY3InOiAnPFUzJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAphAAAAYgAAAGMAAAA=")
  static let structured = bytes("k05VTVBZAQB2AHsnZGVzY3InOiBbKCdhJywgJzxpNCcpLCAoJ2InLCAnPGY4JyldLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
  static let scalar = bytes("k05VTVBZAQB2AHsnZGVzY3InOiAnPGk0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoHAAAA")
  static let float64 = bytes("k05VTVBZAQB2AHsnZGVzY3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqamZmZmZm5PwAAAAAAAATA")
  static let npzStored = bytes("UEsDBC0AAAAAAAAAIQAKnACk//////////8FABQAYS5ucHkBABAAmAAAAAAAAACYAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxmNCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgyLCAzKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAAAAAAAAgD4AAAA/AABAPwAAgD8AAKA/UEsDBC0AAAAAAAAAIQC8kVWO//////////8FABQAYi5ucHkBABAAmAAAAAAAAACYAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxpOCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgzLCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAQAAAAAAAAACAAAAAAAAAAMAAAAAAAAAUEsBAi0DLQAAAAAAAAAhAAqcAKSYAAAAmAAAAAUAAAAAAAAAAAAAAIABAAAAAGEubnB5UEsBAi0DLQAAAAAAAAAhALyRVY6YAAAAmAAAAAUAAAAAAAAAAAAAAIABzwAAAGIubnB5UEsFBgAAAAACAAIAZgAAAJ4BAAAAAA==")
  static let npzDeflated = bytes("UEsDBC0AAAAIAAAAIQAKnACk//////////8FABQAYS5ucHkBABAAmAAAAAAAAABWAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loG6TZqKuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GkY6CsaaOgq1CmQDLgYwaLADEvYMDA5A3ADEC+wBUEsDBC0AAAAIAAAAIQC8kVWO//////////8FABQAYi5ucHkBABAAmAAAAAAAAABNAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loG6TaaGuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GsY6mjoKtQoUAC5GBghggtLMUBoAUEsBAi0DLQAAAAgAAAAhAAqcAKRWAAAAmAAAAAUAAAAAAAAAAAAAAIABAAAAAGEubnB5UEsBAi0DLQAAAAgAAAAhALyRVY5NAAAAmAAAAAUAAAAAAAAAAAAAAIABjQAAAGIubnB5UEsFBgAAAAACAAIAZgAAABEBAAAAAA==")
}

/// `[0, 0.25, 0.5, 0.75, 1, 1.25]` as float32 [2, 3]: what `littleFloat` and `bigFloat` hold.
private let quarterSteps: [Float] = [0, 0.25, 0.5, 0.75, 1, 1.25]

/// The message of the `NumPyError` that `body` throws.
private func message(_ body: () throws -> Void) -> String {
  do {
    try body()
    return "(no error)"
  } catch let error as NumPyError {
    return error.message
  } catch {
    return "(not a NumPyError: \(error))"
  }
}

/// One array per dtype the files support, with values at the edges of each type's range.
private func everyDType() -> [NDArray] {
  [
    NDArray([Float](arrayLiteral: 0, -1.5, .infinity, .leastNonzeroMagnitude, 3.4e38, -0.0), shape: [2, 3]),
    NDArray([Half(1), Half(-0.5), Half(65504), Half(6e-8)], shape: [4]),
    NDArray([Double](arrayLiteral: .pi, -1e300, 5e-324), shape: [3, 1]),
    NDArray([Int8](arrayLiteral: .min, -1, 0, .max), shape: [2, 2]),
    NDArray([Int16](arrayLiteral: .min, -1, 0, .max), shape: [4]),
    NDArray([Int32](arrayLiteral: .min, -1, 0, .max), shape: [1, 4]),
    NDArray([Int64](arrayLiteral: .min, -1, 0, .max), shape: [2, 1, 2]),
    NDArray([UInt8](arrayLiteral: 0, 1, 255), shape: [3]),
    NDArray([UInt16](arrayLiteral: 0, 1, .max), shape: [3]),
    NDArray([UInt32](arrayLiteral: 0, 1, .max), shape: [3]),
    NDArray([UInt64](arrayLiteral: 0, 1, .max), shape: [3]),
    NDArray([true, false, true], shape: [3]),
    NDArray([Float](), shape: [0, 5]),
    NDArray(scalar: Int64(42)),
  ]
}

private func sameBytes(_ a: NDArray, _ b: NDArray) -> Bool {
  a.dtype == b.dtype && a.shape == b.shape && a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.elementsEqual(y) } }
}

@Suite struct NumPyFileTests {
  @Test func everyDTypeRoundTrips() throws {
    for array in everyDType() {
      let bytes = try NumPyFile.encode(array)
      #expect(bytes.count % 64 == array.byteCount % 64, "data starts at a multiple of 64")
      let back = try NumPyFile.decode(bytes)
      #expect(sameBytes(array, back), "\(array.dtype) \(array.shape)")
    }
  }

  @Test func writesWhatNumPyWrites() throws {
    let array = NDArray(quarterSteps, shape: [2, 3])
    #expect(try NumPyFile.encode(array) == NumPyWritten.littleFloat)
    #expect(try NumPyFile.encode(NDArray(scalar: Int32(7))) == NumPyWritten.scalar)
  }

  @Test func readsLittleAndBigEndian() throws {
    for bytes in [NumPyWritten.littleFloat, NumPyWritten.bigFloat] {
      let array = try NumPyFile.decode(bytes)
      #expect(array.dtype == .float && array.shape == [2, 3])
      #expect(array.scalars(as: Float.self) == quarterSteps)
    }
    #expect(try NumPyFile.decode(NumPyWritten.bigInt64).scalars(as: Int64.self) == [1, -2, 300_000_000_000])
    #expect(try NumPyFile.decode(NumPyWritten.bigHalf).scalars(as: Half.self).map(\.floatValue) == [1.5, -0.25, 65504])
    #expect(try NumPyFile.decode(NumPyWritten.bigUInt16).scalars(as: UInt16.self) == [1, 513, 65535])
    #expect(try NumPyFile.decode(NumPyWritten.float64).scalars(as: Double.self) == [0.1, -2.5])
    let scalar = try NumPyFile.decode(NumPyWritten.scalar)
    #expect(scalar.shape == [] && scalar.scalars(as: Int32.self) == [7])
  }

  @Test func readsVersion2And3Headers() throws {
    let v2 = try NumPyFile.decode(NumPyWritten.version2)
    #expect(v2.dtype == .int32 && v2.shape == [2, 2] && v2.scalars(as: Int32.self) == [1, 2, 3, 4])
    let v3 = try NumPyFile.decode(NumPyWritten.version3)
    #expect(v3.dtype == .bool && v3.scalars(as: Bool.self) == [true, false, true])
  }

  @Test func writesVersion2ForHugeHeaders() throws {
    // A rank-25000 shape of ones makes a header past 64 KiB.
    let array = NDArray([Float(3)], shape: [Int](repeating: 1, count: 25000))
    let bytes = try NumPyFile.encode(array)
    #expect(bytes[6] == 2 && bytes[7] == 0)
    #expect(try sameBytes(NumPyFile.decode(bytes), array))
  }

  @Test func refusesFortranOrderPickledAndOtherDTypes() {
    #expect(message { _ = try NumPyFile.decode(NumPyWritten.fortran) }.contains("Fortran-order arrays are not supported"))
    #expect(message { _ = try NumPyFile.decode(NumPyWritten.pickled) }.contains("pickled Python objects"))
    #expect(message { _ = try NumPyFile.decode(NumPyWritten.complex) } .hasPrefix("unsupported dtype '<c8'"))
    #expect(message { _ = try NumPyFile.decode(NumPyWritten.unicode) } .hasPrefix("unsupported dtype '<U3'"))
    #expect(message { _ = try NumPyFile.decode(NumPyWritten.structured) }.contains("structured dtypes"))
  }

  @Test func refusesTruncatedAndDamagedFiles() {
    let good = NumPyWritten.littleFloat
    #expect(message { _ = try NumPyFile.decode(Array(good.prefix(good.count - 1))) }.hasPrefix("truncated: the header promises 24 bytes"))
    #expect(message { _ = try NumPyFile.decode(Array(good.prefix(40))) }.hasPrefix("truncated: the header is 118 bytes long"))
    #expect(message { _ = try NumPyFile.decode(Array(good.prefix(9))) }.hasPrefix("truncated"))
    #expect(message { _ = try NumPyFile.decode(Array(good.prefix(3))) }.hasPrefix("truncated"))
    #expect(message { _ = try NumPyFile.decode([]) }.hasPrefix("truncated"))
    #expect(message { _ = try NumPyFile.decode(Array("PK\u{3}\u{4} not numpy at all".utf8)) }.hasPrefix("not a .npy file"))
    var version = good
    version[6] = 4
    #expect(message { _ = try NumPyFile.decode(version) } == "unsupported .npy format version 4.0 (1.0, 2.0 and 3.0 are read)")
  }

  /// A hand-made file: `header` as the dictionary, `data` after it.
  private func file(_ header: String, data: [UInt8] = []) -> [UInt8] {
    let text = Array(header.utf8) + [0x0A]
    return NumPyFile.magic + [1, 0, UInt8(text.count & 0xFF), UInt8(text.count >> 8)] + text + data
  }

  @Test func refusesBadHeaders() {
    let cases: [(String, String)] = [
      ("{'descr': '<f4', 'fortran_order': False}", "bad header: the dictionary lacks 'shape'"),
      ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", "bad header: the dictionary has unknown keys 'x'"),
      ("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", "bad header: 'shape' holds something other than a non-negative integer"),
      ("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", "bad header: 'fortran_order' is not True or False"),
      ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", "bad header: expected '}' at character"),
      ("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999)}", "bad header: shape (99999999999, 99999999999) is too large"),
      ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} trailing", "bad header: unexpected text after the dictionary"),
      ("[" + String(repeating: "[", count: 100), "bad header: nested too deeply"),
      ("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}", "bad header: integer too large"),
    ]
    for (header, expected) in cases {
      let got = message { _ = try NumPyFile.decode(file(header)) }
      #expect(got.hasPrefix(expected), "\(header): \(got)")
    }
  }

  @Test func acceptsPythonSpellings() throws {
    // Python 2 longs, double quotes, no trailing comma, a parenthesized scalar, native byte order.
    let data: [UInt8] = [1, 0, 0, 0, 2, 0, 0, 0]
    let a = try NumPyFile.decode(file(#"{"descr": "=i4", "shape": (2L,), "fortran_order": False}"#, data: data))
    #expect(a.scalars(as: Int32.self) == [1, 2])
    let b = try NumPyFile.decode(file("{'descr':'|u1','fortran_order':False,'shape':(2, 4 ),}", data: [UInt8](repeating: 9, count: 8)))
    #expect(b.shape == [2, 4])
  }

  @Test func boolBytesOtherThanZeroAndOneReadAsTrue() throws {
    let a = try NumPyFile.decode(file("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", data: [0, 1, 7]))
    #expect(a.withUnsafeBytes { Array($0) } == [0, 1, 1])
  }

  @Test func readsAndReportsFiles() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rebirth-npy-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("x.npy").path
    try Data(NumPyWritten.bigFloat).write(to: URL(fileURLWithPath: path))
    #expect(try NumPyFile.read(path: path).scalars(as: Float.self) == quarterSteps)
    #expect(message { _ = try NumPyFile.read(path: dir.appendingPathComponent("nope.npy").path) } == "no such file")
    #expect(message { _ = try NumPyFile.read(path: dir.path) } == "is a directory, not a file")
  }
}

@Suite struct NumPyArchiveTests {
  @Test func readsWhatNumPyWrites() throws {
    for bytes in [NumPyWritten.npzStored, NumPyWritten.npzDeflated] {
      let arrays = try NumPyArchive.decode(bytes)
      #expect(arrays.map(\.name) == ["a", "b"])
      #expect(arrays[0].array.shape == [2, 3] && arrays[0].array.scalars(as: Float.self) == quarterSteps)
      #expect(arrays[1].array.scalars(as: Int64.self) == [1, 2, 3])
    }
  }

  @Test func roundTripsStoredAndDeflated() throws {
    let arrays = everyDType().enumerated().map { (name: "array/\($0.offset) ü", array: $0.element) }
    for compression in [NumPyArchive.Compression.stored, .deflated] {
      let bytes = try NumPyArchive.encode(arrays, compression: compression)
      let back = try NumPyArchive.decode(bytes)
      #expect(back.map(\.name) == arrays.map(\.name))
      for (a, b) in zip(arrays, back) { #expect(sameBytes(a.array, b.array), "\(a.name)") }
    }
    #expect(try NumPyArchive.decode(NumPyArchive.encode([])).isEmpty)
  }

  @Test func deflateShrinksRepetitiveData() throws {
    let zeros = NDArray(zeros: .float, shape: [1000])
    let stored = try NumPyArchive.encode([("z", zeros)], compression: .stored)
    let deflated = try NumPyArchive.encode([("z", zeros)], compression: .deflated)
    #expect(deflated.count < stored.count / 10)
  }

  @Test func refusesDamagedArchives() throws {
    let good = try NumPyArchive.encode([("x", NDArray(quarterSteps, shape: [2, 3]))], compression: .deflated)
    // A flipped bit in the deflated data: zlib or the CRC notices.
    var flipped = good
    flipped[60] ^= 0x10
    let damaged = message { _ = try NumPyArchive.decode(flipped) }
    #expect(damaged.hasPrefix("member 'x.npy': "), "\(damaged)")
    // Cut short: the end record is gone.
    #expect(message { _ = try NumPyArchive.decode(Array(good.prefix(good.count - 30))) }.hasPrefix("truncated"))
    #expect(message { _ = try NumPyArchive.decode(Array(good.prefix(10))) }.hasPrefix("not a .npz file"))
    #expect(message { _ = try NumPyArchive.decode(NumPyWritten.littleFloat) }.hasPrefix("not a .npz file"))
    // A stored member whose data changed: the CRC catches it.
    var stored = try NumPyArchive.encode([("x", NDArray(quarterSteps, shape: [2, 3]))])
    stored[30 + 5 + 128] ^= 1
    #expect(message { _ = try NumPyArchive.decode(stored) } == "member 'x.npy': CRC-32 mismatch: the data is damaged")
    // Other compression methods.
    var method = try NumPyArchive.encode([("x", NDArray(quarterSteps, shape: [2, 3]))])
    let directory = method.count - 22 - (46 + 5)
    method[8] = 12
    method[directory + 10] = 12
    #expect(message { _ = try NumPyArchive.decode(method) }.contains("compression method 12 is not supported"))
    // Members that are not arrays, and duplicates.
    let one = try NumPyArchive.encode([("x", NDArray(scalar: Float(1)))])
    var renamed = one
    for i in renamed.indices where renamed[i...].starts(with: Array("x.npy".utf8)) {
      renamed.replaceSubrange(i..<i + 5, with: Array("x.txt".utf8))
    }
    #expect(message { _ = try NumPyArchive.decode(renamed) } == "member 'x.txt' is not a .npy array")
    #expect(message { _ = try NumPyArchive.encode([("x", NDArray(scalar: Float(1))), ("x", NDArray(scalar: Float(2)))]) } == "two arrays are named 'x'")
  }

  @Test func refusesArraysNpyCannotHold() {
    let strings = message { _ = try NumPyFile.encode(NDArray(zeros: .bfloat16, shape: [2])) }
    #expect(strings == "arrays of type bfloat16 cannot be written as .npy")
  }
}
