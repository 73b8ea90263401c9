import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// The supported-formats tables in README.md and formats.md are generated from the descriptors
/// (`make docs`); this fails when a descriptor changed and the docs were not regenerated.
final class DocsTests: XCTestCase {
    func testFormatTablesMatchDescriptors() throws {
        let table = Catalog.markdownTable().trimmingCharacters(in: .whitespacesAndNewlines)
        for doc in ["README.md", "formats.md"] {
            let text = try String(contentsOfFile: SharedTestData.packageRoot + "/" + doc, encoding: .utf8)
            XCTAssertTrue(text.contains(table), "\(doc): formats table is stale; run 'make docs'")
        }
    }

    func testEveryReaderAndWriterHasADescriptorRow() {
        let table = Catalog.markdownTable()
        for d in Catalog.descriptors { XCTAssertTrue(table.contains("`\(d.name)`"), d.name) }
        XCTAssertEqual(Set(Catalog.descriptors.map(\.name)).count, Catalog.descriptors.count)
    }
}
