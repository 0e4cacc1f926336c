using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Autograd.Nn;
using Autograd.Nn.Serialization;

namespace Autograd.Tests;

/// <summary>
/// The safetensors reader and writer: round trips of every dtype, the exact bytes of a small file, metadata, every
/// malformed file the reader must reject, module saving and loading (all-or-nothing), and PyTorch interop through
/// tests/golden/safetensors/torch_mlp.safetensors (written by tests/golden/safetensors_interop.py).
/// </summary>
public sealed class SafeTensorsTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "autograd-safetensors-tests-" + Guid.NewGuid().ToString("N"));
    private readonly ITestOutputHelper _output;

    public SafeTensorsTests(ITestOutputHelper output)
    {
        _output = output;
        Directory.CreateDirectory(_dir);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    // ---------------------------------------------------------------- round trips

    [Fact]
    public void RoundTripsFloat32BitForBit()
    {
        var tensors = new Dictionary<string, Tensor>
        {
            ["matrix"] = Tensor.FromArray([1.5f, -0f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon], 2, 3),
            ["scalar"] = Tensor.Scalar(3.25, DType.Float32),
            ["empty"] = Tensor.Zeros(new Shape(0, 3), DType.Float32),
            ["cube"] = Tensor.Rand(new Shape(2, 3, 4), seed: 7, DType.Float32),
        };
        var path = PathOf("f32.safetensors");
        SafeTensors.Save(path, tensors);

        var back = SafeTensors.Load(path);
        Assert.Equal(tensors.Keys, back.Keys);
        foreach (var (name, t) in tensors)
        {
            Assert.Equal(DType.Float32, back[name].DType);
            Assert.Equal(t.Shape, back[name].Shape);
            Assert.Equal(Bits(t.ToArray<float>()), Bits(back[name].ToArray<float>()));
            Assert.True(back[name].IsLeaf);
            Assert.False(back[name].RequiresGrad);
        }
    }

    [Fact]
    public void RoundTripsFloat64BitForBit()
    {
        var tensors = new Dictionary<string, Tensor>
        {
            ["w"] = Tensor.FromArray([Math.PI, -0.0, double.NaN, double.MaxValue, double.Epsilon, -1e-300], 3, 2),
            ["s"] = Tensor.Scalar(-2.5),
            ["v"] = Tensor.RandN(new Shape(17), seed: 3),
        };
        using var ms = new MemoryStream();
        SafeTensors.Save(ms, tensors);
        ms.Position = 0;
        var back = SafeTensors.Load(ms);

        Assert.Equal(tensors.Keys, back.Keys);
        foreach (var (name, t) in tensors)
        {
            Assert.Equal(DType.Float64, back[name].DType);
            Assert.Equal(t.Shape, back[name].Shape);
            Assert.Equal(
                t.ToArray<double>().Select(BitConverter.DoubleToInt64Bits),
                back[name].ToArray<double>().Select(BitConverter.DoubleToInt64Bits));
        }
    }

    [Fact]
    public void RoundTripsInt64AndMixedDtypesWithAlignedData()
    {
        var path = PathOf("mixed.safetensors");
        SafeTensors.Save(path,
        [
            new("f", Tensor.FromArray([1f, 2f, 3f], 3)),
            new("d", Tensor.From(0.5)),
            new("i", Tensor.FromArray([long.MinValue, long.MaxValue, -1, 0, 42, 7], 2, 3)),
        ]);

        // 8-byte dtypes first, in the caller's order, then the 4-byte one: every tensor aligned to its element size.
        var (json, data) = Split(File.ReadAllBytes(path));
        Assert.Equal(
            """{"d":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"i":{"dtype":"I64","shape":[2,3],"data_offsets":[8,56]},"f":{"dtype":"F32","shape":[3],"data_offsets":[56,68]}}""",
            json.TrimEnd(' '));
        Assert.Equal(68, data.Length);

        var back = SafeTensors.Load(path);
        Assert.Equal(["d", "i", "f"], back.Keys);
        Assert.Equal(DType.Int64, back["i"].DType);
        Assert.Equal(new[] { 2, 3 }, back["i"].Shape.ToArray());
        Assert.Equal(new long[] { long.MinValue, long.MaxValue, -1, 0, 42, 7 }, back["i"].ToArray<long>());
        Assert.Equal(new[] { 1f, 2f, 3f }, back["f"].ToArray<float>());
        Assert.Equal(new[] { 0.5 }, back["d"].ToArray<double>());
    }

    [Fact]
    public void WritesTheExactBytesOfATinyFile()
    {
        var path = PathOf("tiny.safetensors");
        SafeTensors.Save(path, [new("a", Tensor.FromArray([1f, 2f], 2))]);
        var bytes = File.ReadAllBytes(path);

        const string json = """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""";
        Assert.Equal(54, json.Length);
        Assert.Equal(72, bytes.Length); // 8 + 56 (54 padded to a multiple of 8) + 8
        Assert.Equal(56UL, BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        Assert.Equal(json + "  ", Encoding.UTF8.GetString(bytes, 8, 56));
        Assert.Equal(new byte[] { 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x40 }, bytes[64..]);

        // The same input gives the same bytes.
        var again = PathOf("tiny2.safetensors");
        SafeTensors.Save(again, [new("a", Tensor.FromArray([1f, 2f], 2))]);
        Assert.Equal(bytes, File.ReadAllBytes(again));
    }

    [Fact]
    public void MetadataRoundTripsAndComesFirstInTheHeader()
    {
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "épsilon \"quoted\" \\ λ", ["empty"] = string.Empty };
        var path = PathOf("meta.safetensors");
        SafeTensors.Save(path, [new("x", Tensor.From(1.0, 2.0))], metadata);

        var (json, _) = Split(File.ReadAllBytes(path));
        Assert.StartsWith("""{"__metadata__":{"empty":"","format":"pt","note":"épsilon \"quoted\" \\ λ"},"x":""", json);
        Assert.Equal(0, (8 + Encoding.UTF8.GetByteCount(json)) % 8);

        var content = SafeTensors.Read(path);
        Assert.Equal(metadata.OrderBy(p => p.Key), content.Metadata.OrderBy(p => p.Key));
        Assert.Equal(["x"], content.Tensors.Keys);
        Assert.Equal("F64", content.StoredDTypes["x"]);

        SafeTensors.Save(path, [new("x", Tensor.From(1.0))]);
        Assert.Empty(SafeTensors.Read(path).Metadata);
    }

    [Fact]
    public void ReadsFromANonSeekableStream()
    {
        using var ms = new MemoryStream();
        SafeTensors.Save(ms, [new("a", Tensor.From(1.0, 2.0)), new("b", Tensor.FromArray([3f], 1))]);
        var bytes = ms.ToArray();

        var back = SafeTensors.Load(new ForwardOnlyStream(bytes, maxRead: 7));
        Assert.Equal(new[] { 1.0, 2.0 }, back["a"].ToArray<double>());
        Assert.Equal(new[] { 3f }, back["b"].ToArray<float>());

        var truncated = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(new ForwardOnlyStream(bytes[..^2], maxRead: 7)));
        Assert.Contains("truncated", truncated.Message, StringComparison.Ordinal);
        Assert.Contains("'b'", truncated.Message, StringComparison.Ordinal);

        var trailing = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(new ForwardOnlyStream([.. bytes, 0], maxRead: 7)));
        Assert.Contains("after the last tensor", trailing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WidensF16AndBf16ToFloat32()
    {
        var half = new[] { (Half)1.0, (Half)(-2.5), Half.MaxValue, Half.Epsilon };
        var f16 = half.SelectMany(h => BitConverter.GetBytes(BitConverter.HalfToUInt16Bits(h))).ToArray();
        var bf16 = new[] { 1f, -3.5f, 1.0e38f }.SelectMany(f => BitConverter.GetBytes((ushort)(BitConverter.SingleToInt32Bits(f) >> 16))).ToArray();
        var path = Raw("half.safetensors",
            """{"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]}}""",
            [.. f16, .. bf16]);

        var content = SafeTensors.Read(path);
        Assert.Equal(DType.Float32, content.Tensors["h"].DType);
        Assert.Equal(half.Select(h => (float)h), content.Tensors["h"].ToArray<float>());
        Assert.Equal(new[] { 1f, -3.5f, BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(1.0e38f) & unchecked((int)0xFFFF0000)) }, content.Tensors["b"].ToArray<float>());
        Assert.Equal("F16", content.StoredDTypes["h"]);
        Assert.Equal("BF16", content.StoredDTypes["b"]);
    }

    // ---------------------------------------------------------------- atomic writes and argument errors

    [Fact]
    public void SaveReplacesAtomicallyAndLeavesNoTemporaryFile()
    {
        var path = PathOf("model.safetensors");
        SafeTensors.Save(path, [new("a", Tensor.From(1.0))]);
        SafeTensors.Save(path, [new("a", Tensor.From(2.0))]);
        Assert.Equal(new[] { 2.0 }, SafeTensors.Load(path)["a"].ToArray<double>());

        var before = File.ReadAllBytes(path);
        Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, [new("a", Tensor.From(3.0)), new("a", Tensor.From(4.0))]));
        Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, [new("__metadata__", Tensor.From(3.0))]));
        Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, [new("b", Tensor.From(3.0))], new Dictionary<string, string> { ["k"] = null! }));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(["model.safetensors"], Directory.GetFiles(_dir).Select(Path.GetFileName));
    }

    // ---------------------------------------------------------------- malformed files

    public static TheoryData<string, string, string> MalformedHeaders() => new()
    {
        { "not JSON", "{not json}", "not valid JSON" },
        { "array", "[1, 2, 3]", "JSON object" },
        { "string", "\"text\"", "JSON object" },
        { "leading space", """ {"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "does not start with '{'" },
        { "entry not object", """{"a":5}""", "tensor 'a': the entry is a JSON Number" },
        { "unknown dtype", """{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,4]}}""", "tensor 'a': unknown dtype 'F128'" },
        { "unsupported dtype", """{"a":{"dtype":"I32","shape":[4],"data_offsets":[0,16]}}""", "tensor 'a' has dtype I32, which Autograd does not support" },
        { "bool dtype", """{"m":{"dtype":"BOOL","shape":[16],"data_offsets":[0,16]}}""", "tensor 'm' has dtype BOOL" },
        { "missing dtype", """{"a":{"shape":[1],"data_offsets":[0,4]}}""", "tensor 'a': missing or non-string \"dtype\"" },
        { "missing shape", """{"a":{"dtype":"F32","data_offsets":[0,4]}}""", "tensor 'a': missing or non-array \"shape\"" },
        { "missing offsets", """{"a":{"dtype":"F32","shape":[1]}}""", "tensor 'a': missing \"data_offsets\"" },
        { "three offsets", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}""", "not an array of two integers" },
        { "negative dim", """{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", "shape entry -1 is not a non-negative integer" },
        { "fractional dim", """{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}""", "shape entry 1.5 is not a non-negative integer" },
        { "negative offset", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}""", "data offset -4 is not a non-negative integer" },
        { "end before begin", """{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "end before they begin" },
        { "shape/offset mismatch", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}""", "tensor 'a': shape [2] of F32 needs 8 bytes (2 elements × 4) but data_offsets [0, 4] span 4" },
        { "huge shape", """{"a":{"dtype":"F64","shape":[2147483647,2147483647,2147483647,2147483647,2147483647],"data_offsets":[0,4]}}""", "tensor 'a': shape [2147483647, 2147483647, 2147483647, 2147483647, 2147483647] of F64 needs" },
        { "overlap", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", "tensor 'b' at data_offsets [4, 8] overlaps tensor 'a' at [0, 8]" },
        { "same offsets", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "overlaps" },
        { "hole", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}""", "the data bytes [4, 8) before tensor 'b' belong to no tensor" },
        { "hole at start", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", "the data bytes [0, 4) before tensor 'a'" },
        { "trailing bytes", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "the data section has 16 bytes but the tensors cover only 4" },
        { "truncated data", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F64","shape":[2],"data_offsets":[8,24]}}""", "truncated: tensor 'b' needs bytes [8, 24) of the data section but the file holds only 16" },
        { "duplicate names", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}}""", "the name 'a' appears twice" },
        { "duplicate metadata", """{"__metadata__":{},"__metadata__":{},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", "the name '__metadata__' appears twice" },
        { "metadata not object", """{"__metadata__":[],"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", "'__metadata__' is a JSON Array" },
        { "metadata not string", """{"__metadata__":{"epoch":3},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", "metadata 'epoch' is a JSON Number" },
    };

    [Theory]
    [MemberData(nameof(MalformedHeaders))]
    public void RejectsMalformedHeader(string caseName, string header, string expected)
    {
        // Every case has a 16-byte data section.
        var path = Raw(caseName.Replace(' ', '_').Replace('/', '_') + ".safetensors", header, new byte[16]);
        var ex = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);

        // The same through a stream.
        using var fs = File.OpenRead(path);
        var exs = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(fs));
        Assert.Contains(expected, exs.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RejectsBadHeaderLengths()
    {
        var tooShort = PathOf("short.safetensors");
        File.WriteAllBytes(tooShort, [1, 2, 3]);
        Assert.Contains("3 bytes long, shorter than the 8-byte header length",
            Assert.Throws<InvalidDataException>(() => SafeTensors.Load(tooShort)).Message, StringComparison.Ordinal);

        var zero = PathOf("zero.safetensors");
        File.WriteAllBytes(zero, new byte[16]);
        Assert.Contains("the header length is 0",
            Assert.Throws<InvalidDataException>(() => SafeTensors.Load(zero)).Message, StringComparison.Ordinal);

        var json = Encoding.UTF8.GetBytes("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""");
        foreach (var n in new ulong[] { (ulong)json.Length + 5, 1UL << 40, ulong.MaxValue })
        {
            var big = PathOf($"big{n}.safetensors");
            File.WriteAllBytes(big, [.. Prefix(n), .. json, 0, 0, 0, 0]);
            var ex = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(big));
            Assert.Contains($"the header length {n} is larger than the file, which has {json.Length + 4} bytes", ex.Message, StringComparison.Ordinal);
            Assert.Contains(big, ex.Message, StringComparison.Ordinal);

            // A stream of unknown length finds out while reading, and does not trust a huge length.
            var exs = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(new ForwardOnlyStream(File.ReadAllBytes(big), maxRead: 7)));
            Assert.Contains($"the header length {n}", exs.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void RejectsAHeaderThatIsNotUtf8()
    {
        var path = PathOf("latin1.safetensors");
        byte[] header = [.. Encoding.UTF8.GetBytes("""{"__metadata__":{"k":" """), 0xE9, .. Encoding.UTF8.GetBytes("\"}}")];
        File.WriteAllBytes(path, [.. Prefix((ulong)header.Length), .. header]);
        Assert.Contains("the header is not valid UTF-8", Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RejectsTruncatedFiles()
    {
        var path = PathOf("whole.safetensors");
        SafeTensors.Save(path, [new("a", Tensor.RandN(new Shape(4, 5), seed: 1)), new("b", Tensor.RandN(new Shape(5), seed: 2))]);
        var bytes = File.ReadAllBytes(path);
        foreach (var cut in new[] { 1, 8, 40, bytes.Length - 160, bytes.Length - 10 })
        {
            var cutPath = PathOf($"cut{cut}.safetensors");
            File.WriteAllBytes(cutPath, bytes[..cut]);
            var ex = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(cutPath));
            Assert.Contains(cutPath, ex.Message, StringComparison.Ordinal);
        }
    }

    // ---------------------------------------------------------------- modules

    private static Sequential Mlp(int seed, DType dtype = DType.Float32) =>
        new(new Linear(4, 3, seed, dtype: dtype), new ReLU(), new Linear(3, 2, seed + 1, dtype: dtype));

    private static Dictionary<string, double[]> Snapshot(Module m) => m.NamedParameters().ToDictionary(p => p.Key, p => p.Value.ToArray());

    [Fact]
    public void ModuleRoundTripUsesStateDictNamesAndUpdatesTheParametersInPlace()
    {
        var source = Mlp(1);
        var path = PathOf("mlp.safetensors");
        source.SaveSafeTensors(path, new Dictionary<string, string> { ["format"] = "pt" });
        Assert.Equal(["0.weight", "0.bias", "2.weight", "2.bias"], SafeTensors.Load(path).Keys);

        var target = Mlp(100);
        var held = target.Parameters().ToList(); // as an optimiser would hold them
        var result = target.LoadSafeTensors(path);
        Assert.Empty(result.MissingKeys);
        Assert.Empty(result.UnexpectedKeys);
        Assert.Equal(held, target.Parameters()); // the same tensor objects...
        Assert.Equal(Snapshot(source), Snapshot(target)); // ...now holding the file's values
        Assert.All(held, p => Assert.True(p.RequiresGrad && p.IsLeaf));

        var x = Tensor.RandN(new Shape(5, 4), seed: 9, DType.Float32);
        Assert.Equal(source.Forward(x).ToArray<float>(), target.Forward(x).ToArray<float>());
    }

    public static TheoryData<string> ModuleMismatches() => ["wrong name", "wrong shape", "wrong dtype", "missing", "unexpected", "malformed header", "truncated"];

    [Theory]
    [MemberData(nameof(ModuleMismatches))]
    public void ModuleLoadFailuresLeaveTheModuleUnchanged(string caseName)
    {
        var good = Mlp(1).NamedParameters().ToList();
        var path = PathOf(caseName.Replace(' ', '_') + ".safetensors");
        string[] expected;
        switch (caseName)
        {
            case "wrong name":
                SafeTensors.Save(path, good.Select(p => p.Key == "0.weight" ? new KeyValuePair<string, Tensor>("0.weights", p.Value) : p));
                expected = ["missing from the file: 0.weight", "not parameters or buffers of the module: 0.weights"];
                break;
            case "wrong shape":
                SafeTensors.Save(path, good.Select(p => p.Key == "2.weight" ? new KeyValuePair<string, Tensor>(p.Key, Tensor.Zeros(new Shape(3, 2), DType.Float32)) : p));
                expected = ["'2.weight': shape [3, 2] in the file, [2, 3] in the module"];
                break;
            case "wrong dtype":
                SafeTensors.Save(path, good.Select(p => p.Key == "0.bias" ? new KeyValuePair<string, Tensor>(p.Key, Tensor.Zeros(new Shape(3))) : p));
                expected = ["'0.bias': dtype F64 (float64) in the file, F32 (float32) in the module"];
                break;
            case "missing":
                SafeTensors.Save(path, good.Where(p => p.Key != "2.bias"));
                expected = ["missing from the file: 2.bias"];
                break;
            case "unexpected":
                SafeTensors.Save(path, [.. good, new("3.weight", Tensor.Zeros(new Shape(1), DType.Float32))]);
                expected = ["not parameters or buffers of the module: 3.weight"];
                break;
            case "malformed header":
                File.WriteAllBytes(path, [.. Prefix(8), .. "{\"0.weig"u8]);
                expected = ["not valid JSON"];
                break;
            default:
                SafeTensors.Save(path, good);
                File.WriteAllBytes(path, File.ReadAllBytes(path)[..^4]);
                expected = ["truncated: tensor"];
                break;
        }

        var model = Mlp(50);
        var before = Snapshot(model);
        var ex = Assert.Throws<InvalidDataException>(() => model.LoadSafeTensors(path));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        foreach (var e in expected)
        {
            Assert.Contains(e, ex.Message, StringComparison.Ordinal);
        }

        Assert.Equal(before, Snapshot(model));
    }

    [Fact]
    public void ModuleLoadReportsEveryProblemAtOnce()
    {
        var path = PathOf("all.safetensors");
        SafeTensors.Save(path,
        [
            new("0.weight", Tensor.Zeros(new Shape(3, 5), DType.Float32)),
            new("0.bias", Tensor.Zeros(new Shape(3))),
            new("extra", Tensor.Zeros(new Shape(1))),
        ]);
        var model = Mlp(5);
        var before = Snapshot(model);
        var msg = Assert.Throws<InvalidDataException>(() => model.LoadSafeTensors(path)).Message;
        Assert.Contains("does not fit Sequential (nothing was loaded)", msg, StringComparison.Ordinal);
        Assert.Contains("missing from the file: 2.weight, 2.bias", msg, StringComparison.Ordinal);
        Assert.Contains("not parameters or buffers of the module: extra", msg, StringComparison.Ordinal);
        Assert.Contains("'0.weight': shape [3, 5] in the file, [3, 4] in the module", msg, StringComparison.Ordinal);
        Assert.Contains("'0.bias': dtype F64 (float64) in the file, F32 (float32) in the module", msg, StringComparison.Ordinal);
        Assert.Equal(before, Snapshot(model));
    }

    [Fact]
    public void NonStrictLoadToleratesMissingAndUnexpectedNamesButNotShapes()
    {
        var source = Mlp(1);
        var path = PathOf("partial.safetensors");
        SafeTensors.Save(path, [.. source.NamedParameters().Where(p => p.Key.StartsWith('0')), new("head.weight", Tensor.Zeros(new Shape(1), DType.Float32))]);

        var model = Mlp(50);
        var before = Snapshot(model);
        Assert.Throws<InvalidDataException>(() => model.LoadSafeTensors(path));
        Assert.Equal(before, Snapshot(model));

        var result = model.LoadSafeTensors(path, strict: false);
        Assert.Equal(["2.weight", "2.bias"], result.MissingKeys);
        Assert.Equal(["head.weight"], result.UnexpectedKeys);
        var after = Snapshot(model);
        Assert.Equal(Snapshot(source)["0.weight"], after["0.weight"]);
        Assert.Equal(Snapshot(source)["0.bias"], after["0.bias"]);
        Assert.Equal(before["2.weight"], after["2.weight"]);
        Assert.Equal(before["2.bias"], after["2.bias"]);

        SafeTensors.Save(path, [new("0.weight", Tensor.Zeros(new Shape(4, 3), DType.Float32))]);
        var ex = Assert.Throws<InvalidDataException>(() => model.LoadSafeTensors(path, strict: false));
        Assert.Contains("'0.weight': shape [4, 3] in the file, [3, 4] in the module", ex.Message, StringComparison.Ordinal);
        Assert.Equal(after, Snapshot(model));
    }

    [Fact]
    public void ModuleStreamOverloadsRoundTripFloat64()
    {
        var source = Mlp(3, DType.Float64);
        using var ms = new MemoryStream();
        source.SaveSafeTensors(ms);
        ms.Position = 0;
        var target = Mlp(4, DType.Float64);
        target.LoadSafeTensors(ms);
        Assert.Equal(Snapshot(source), Snapshot(target));

        ms.Position = 0;
        var f32 = Mlp(4);
        var ex = Assert.Throws<InvalidDataException>(() => f32.LoadSafeTensors(ms));
        Assert.Contains("'0.weight': dtype F64 (float64) in the file, F32 (float32) in the module", ex.Message, StringComparison.Ordinal);
    }

    // ---------------------------------------------------------------- PyTorch interop

    [Fact]
    public void LoadsPyTorchWrittenMlpAndMatchesItsOutput()
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "golden", "safetensors");
        using var golden = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "torch_mlp.json")));
        var root = golden.RootElement;
        var path = Path.Combine(dir, "torch_mlp.safetensors");

        var content = SafeTensors.Read(path);
        Assert.Equal("pt", content.Metadata["format"]);
        Assert.All(content.StoredDTypes.Values, d => Assert.Equal("F32", d));

        var model = Mlp(123);
        model.LoadSafeTensors(path);
        foreach (var (name, p) in model.NamedParameters())
        {
            var (shape, data) = ReadGolden(root.GetProperty("parameters").GetProperty(name));
            Assert.Equal(shape, p.Shape.ToArray());
            Assert.Equal(data, p.ToArray<float>());
        }

        var (inShape, input) = ReadGolden(root.GetProperty("input"));
        var (outShape, output) = ReadGolden(root.GetProperty("output"));
        var y = model.Forward(Tensor.FromArray(input, inShape));
        Assert.Equal(outShape, y.Shape.ToArray());
        var got = y.ToArray<float>();
        var maxErr = 0.0;
        for (var i = 0; i < got.Length; i++)
        {
            Assert.True(Math.Abs(got[i] - output[i]) <= 1e-6, $"output[{i}]: Autograd {got[i]:R}, PyTorch {output[i]:R}");
            maxErr = Math.Max(maxErr, Math.Abs(got[i] - output[i]));
        }

        _output.WriteLine($"max |Autograd - PyTorch| over {got.Length} outputs: {maxErr:R}");
    }

    /// <summary>
    /// Writes &lt;temp&gt;/autograd-safetensors-interop/autograd_mlp.safetensors and autograd_mlp.json (input and
    /// output) for the manual check in tests/golden/safetensors_interop.py, which loads them into PyTorch.
    /// </summary>
    [Fact]
    public void WritesAFilePyTorchCanLoad()
    {
        var model = Mlp(42);
        var x = Tensor.RandN(new Shape(5, 4), seed: 11, DType.Float32);
        var y = model.Forward(x);

        var dir = Path.Combine(Path.GetTempPath(), "autograd-safetensors-interop");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "autograd_mlp.safetensors");
        model.SaveSafeTensors(path, new Dictionary<string, string> { ["format"] = "pt" });
        using (var fs = File.Create(Path.Combine(dir, "autograd_mlp.json")))
        using (var w = new Utf8JsonWriter(fs))
        {
            w.WriteStartObject();
            WriteGolden(w, "input", x);
            WriteGolden(w, "output", y);
            w.WriteEndObject();
        }

        var (json, _) = Split(File.ReadAllBytes(path));
        Assert.Equal(
            """{"__metadata__":{"format":"pt"},"0.weight":{"dtype":"F32","shape":[3,4],"data_offsets":[0,48]},"0.bias":{"dtype":"F32","shape":[3],"data_offsets":[48,60]},"2.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[60,84]},"2.bias":{"dtype":"F32","shape":[2],"data_offsets":[84,92]}}""",
            json.TrimEnd(' '));
        var back = Mlp(0);
        back.LoadSafeTensors(path);
        Assert.Equal(y.ToArray<float>(), back.Forward(x).ToArray<float>());
    }

    // ---------------------------------------------------------------- helpers

    private static int[] Bits(float[] values) => [.. values.Select(BitConverter.SingleToInt32Bits)];

    private static byte[] Prefix(ulong n)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, n);
        return b;
    }

    /// <summary>Writes a file from a header (padded with spaces to a multiple of 8) and a data section.</summary>
    private string Raw(string name, string header, byte[] data)
    {
        var h = Encoding.UTF8.GetBytes(header);
        h = [.. h, .. Enumerable.Repeat((byte)' ', (8 - (h.Length % 8)) % 8)];
        var path = PathOf(name);
        File.WriteAllBytes(path, [.. Prefix((ulong)h.Length), .. h, .. data]);
        return path;
    }

    private static (string Json, byte[] Data) Split(byte[] file)
    {
        var n = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        Assert.Equal(0, n % 8);
        return (Encoding.UTF8.GetString(file, 8, n), file[(8 + n)..]);
    }

    private static (int[] Shape, float[] Data) ReadGolden(JsonElement e) =>
        ([.. e.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32())],
         [.. e.GetProperty("data").EnumerateArray().Select(d => (float)d.GetDouble())]);

    private static void WriteGolden(Utf8JsonWriter w, string name, Tensor t)
    {
        w.WriteStartObject(name);
        w.WriteStartArray("shape");
        foreach (var d in t.Shape.Dims)
        {
            w.WriteNumberValue(d);
        }

        w.WriteEndArray();
        w.WriteStartArray("data");
        foreach (var v in t.ToArray<float>())
        {
            w.WriteNumberValue((double)v);
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }
}
