using System.Buffers.Binary;
using System.Globalization;
using Autograd.Nn.Data;
using static Autograd.Tests.IdxBytes;

namespace Autograd.Tests;

/// <summary>
/// The data part of Autograd.Nn: the IDX reader (raw and gzip, every element type, every kind of corrupt file),
/// Fashion-MNIST loading from a directory, the CSV reader, the seeded mini-batch loader and the synthetic sets.
/// Every file is written by the test itself into a temporary directory.
/// </summary>
public sealed class DataTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("autograd-data-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // ---------------------------------------------------------------- helpers

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private string WriteText(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static readonly byte[] Pixels = [0, 51, 255, 102, 1, 254, 10, 20, 30, 40, 50, 60];

    private static InvalidDataException Bad(Action read) => Assert.Throws<InvalidDataException>(read);

    // ---------------------------------------------------------------- IDX: decoding

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void IdxImagesDecodeExactly(bool gzip)
    {
        var raw = Idx(0x08, [2, 2, 3], Pixels);
        Assert.Equal(new byte[] { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3 }, raw[..16]);
        var path = Write(gzip ? "img.gz" : "img", gzip ? Gzip(raw) : raw);

        var idx = IdxFile.Read(path);
        Assert.Equal(IdxDataType.UByte, idx.DataType);
        Assert.Equal(new[] { 2, 2, 3 }, idx.Shape);
        Assert.Equal(3, idx.Rank);
        Assert.Equal(12, idx.ElementCount);
        Assert.Equal(Pixels, Assert.IsType<byte[]>(idx.Data));
        Assert.Equal(path, idx.Source);

        var flat = IdxFile.ReadImages(path);
        Assert.Equal(DType.Float32, flat.DType);
        Assert.Equal(new[] { 2, 6 }, flat.Shape.ToArray());
        Assert.Equal(Pixels.Select(p => p / 255f).ToArray(), flat.ToArray<float>());
        Assert.Equal(0.2f, flat[0, 1]);
        Assert.Equal(1f, flat[0, 2]);
        Assert.Equal(0f, flat[0, 0]);
        Assert.Equal((float)(40 / 255.0), flat[1, 3], 6);

        var cube = IdxFile.ReadImages(path, flatten: false, dtype: DType.Float64);
        Assert.Equal(DType.Float64, cube.DType);
        Assert.Equal(new[] { 2, 2, 3 }, cube.Shape.ToArray());
        Assert.Equal(254 / 255.0, cube[0, 1, 2]);
        Assert.Equal(60 / 255.0, cube[1, 1, 2]);

        Assert.Throws<ArgumentException>(() => IdxFile.ReadImages(path, dtype: DType.Int64));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void IdxLabelsDecodeToInt64(bool gzip)
    {
        var raw = Idx(0x08, [5], [9, 0, 0, 3, 255]);
        Assert.Equal(0x00000801, BinaryPrimitives.ReadInt32BigEndian(raw));
        var path = Write(gzip ? "lab.gz" : "lab", gzip ? Gzip(raw) : raw);
        var labels = IdxFile.ReadLabels(path);
        Assert.Equal(DType.Int64, labels.DType);
        Assert.Equal(new[] { 5 }, labels.Shape.ToArray());
        Assert.Equal(new long[] { 9, 0, 0, 3, 255 }, labels.ToArray<long>());
    }

    [Fact]
    public void IdxEveryElementTypeDecodesBigEndian()
    {
        // sbyte
        var sb = IdxFile.Read(Write("sb", Idx(0x09, [3], [0x80, 0xFF, 0x7F])));
        Assert.Equal(IdxDataType.SByte, sb.DataType);
        Assert.Equal(new sbyte[] { -128, -1, 127 }, Assert.IsType<sbyte[]>(sb.Data));

        // int16: 0x1234, -2
        var sh = IdxFile.Read(Write("sh", Idx(0x0B, [2], [0x12, 0x34, 0xFF, 0xFE])));
        Assert.Equal(IdxDataType.Int16, sh.DataType);
        Assert.Equal(new short[] { 0x1234, -2 }, Assert.IsType<short[]>(sh.Data));

        // int32 [2, 1]: 0x01020304, int.MinValue
        var it = IdxFile.Read(Write("it", Idx(0x0C, [2, 1], [1, 2, 3, 4, 0x80, 0, 0, 0])));
        Assert.Equal(new[] { 2, 1 }, it.Shape);
        Assert.Equal(new[] { 0x01020304, int.MinValue }, Assert.IsType<int[]>(it.Data));
        var itT = it.ToTensor();
        Assert.Equal(DType.Int64, itT.DType);
        Assert.Equal(new long[] { 0x01020304, int.MinValue }, itT.ToArray<long>());

        // float32: 1.5 = 3FC00000, -0.25 = BE800000
        var fl = IdxFile.Read(Write("fl.gz", Gzip(Idx(0x0D, [2], [0x3F, 0xC0, 0, 0, 0xBE, 0x80, 0, 0]))));
        Assert.Equal(IdxDataType.Float32, fl.DataType);
        Assert.Equal(new[] { 1.5f, -0.25f }, Assert.IsType<float[]>(fl.Data));
        Assert.Equal(DType.Float32, fl.ToTensor().DType);
        Assert.Equal(new[] { 1.5, -0.25 }, fl.ToDoubleArray());

        // float64: pi, -2
        var db = new byte[16];
        BinaryPrimitives.WriteDoubleBigEndian(db, Math.PI);
        BinaryPrimitives.WriteDoubleBigEndian(db.AsSpan(8), -2.0);
        Assert.Equal(0x40, db[0]);
        var d = IdxFile.Read(Write("db", Idx(0x0E, [1, 2], db)));
        Assert.Equal(new[] { Math.PI, -2.0 }, Assert.IsType<double[]>(d.Data));
        var dT = d.ToTensor();
        Assert.Equal(DType.Float64, dT.DType);
        Assert.Equal(new[] { 1, 2 }, dT.Shape.ToArray());
        Assert.Equal(new[] { Math.PI, -2.0 }, dT.ToArray());

        // Conversions: a non-integral float to int64 is refused, naming the element.
        Assert.Equal(new long[] { -2 }, IdxFile.Read(Write("w", Idx(0x0E, [1], db[8..]))).ToTensor(DType.Int64).ToArray<long>());
        var e = Bad(() => d.ToTensor(DType.Int64));
        Assert.Contains("element 0", e.Message);
        // ToTensor does not scale: ubyte 51 stays 51.
        Assert.Equal(new[] { 51f, 255f }, IdxFile.Read(Write("u", Idx(0x08, [2], [51, 255]))).ToTensor(DType.Float32).ToArray<float>());
    }

    [Fact]
    public void IdxEmptyDimensionsAreAllowed()
    {
        var idx = IdxFile.Read(Write("empty", Idx(0x08, [0, 28, 28], [])));
        Assert.Equal(new[] { 0, 28, 28 }, idx.Shape);
        Assert.Equal(0, idx.ElementCount);
        Assert.Equal(new[] { 0, 784 }, IdxFile.ReadImages(Path.Combine(_dir, "empty")).Shape.ToArray());
    }

    // ---------------------------------------------------------------- IDX: corrupt files

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void IdxBadMagicNamesFileAndMagic(bool gzip)
    {
        var raw = Idx(0x08, [2], [1, 2]);
        raw[0] = 0x12;
        raw[1] = 0x34;
        var path = Write("badmagic", gzip ? Gzip(raw) : raw);
        var e = Bad(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("bad magic number 0x12340801", e.Message);
    }

    [Fact]
    public void IdxUnknownTypeCodeIsNamed()
    {
        var path = Write("badtype", Idx(0x0A, [2], [1, 2]));
        var e = Bad(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("unknown element type code 0x0A", e.Message);

        var zeroDims = Write("zerodims", [0, 0, 8, 0]);
        e = Bad(() => IdxFile.Read(zeroDims));
        Assert.Contains("0 dimensions", e.Message);
    }

    [Fact]
    public void IdxWrongKindForImagesOrLabels()
    {
        var labels = Write("labels", Idx(0x08, [3], [1, 2, 3]));
        var e = Bad(() => IdxFile.ReadImages(labels));
        Assert.Contains(labels, e.Message);
        Assert.Contains("magic 0x00000803", e.Message);
        Assert.Contains("0x00000801", e.Message);

        var images = Write("images", Idx(0x08, [1, 1, 3], [1, 2, 3]));
        e = Bad(() => IdxFile.ReadLabels(images));
        Assert.Contains("must have magic 0x00000801", e.Message);
        Assert.Contains("0x00000803", e.Message);

        var floats = Write("floats", Idx(0x0D, [1], [0x3F, 0x80, 0, 0]));
        e = Bad(() => IdxFile.ReadLabels(floats));
        Assert.Contains("0x00000D01", e.Message);
        Assert.Contains("Float32", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void IdxTruncatedDataNamesExpectedAndActualBytes(bool gzip)
    {
        // Header promises 16 + 12 = 28 bytes; the file holds 16 + 7 = 23.
        var raw = Idx(0x08, [2, 2, 3], Pixels)[..23];
        var path = Write("trunc", gzip ? Gzip(raw) : raw);
        var e = Bad(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated data", e.Message);
        Assert.Contains("promises 28 bytes", e.Message);
        Assert.Contains("holds 23", e.Message);
        Assert.Contains(gzip ? "decompressed" : "the file holds", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void IdxTrailingBytesNameExpectedAndActualBytes(bool gzip)
    {
        var raw = Idx(0x08, [4], [1, 2, 3, 4, 5, 6, 7]);
        var path = Write("trail", gzip ? Gzip(raw) : raw);
        var e = Bad(() => IdxFile.ReadLabels(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("trailing bytes", e.Message);
        Assert.Contains("promises 12 bytes", e.Message);
        Assert.Contains("holds 15", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void IdxTruncatedHeaderIsReported(bool gzip)
    {
        var full = Idx(0x08, [2, 2, 3], Pixels);
        var sizes = Write("hdr", gzip ? Gzip(full[..10]) : full[..10]);
        var e = Bad(() => IdxFile.Read(sizes));
        Assert.Contains(sizes, e.Message);
        Assert.Contains("truncated header", e.Message);
        Assert.Contains("need 16 header bytes", e.Message);
        Assert.Contains("only 10", e.Message);

        var magic = Write("magic", gzip ? Gzip(full[..3]) : full[..3]);
        e = Bad(() => IdxFile.Read(magic));
        Assert.Contains("magic number is incomplete", e.Message);
        Assert.Contains("only 3 bytes", e.Message);

        e = Bad(() => IdxFile.Read(Write("zero", [])));
        Assert.Contains("only 0 bytes", e.Message);
    }

    [Fact]
    public void IdxBadSizesAreRefused()
    {
        var neg = Write("neg", Idx(0x08, [2, -3], []));
        var e = Bad(() => IdxFile.Read(neg));
        Assert.Contains(neg, e.Message);
        Assert.Contains("dimension 1 has negative size -3", e.Message);

        // 65536^2 bytes do not fit an array; the raw file's 12 bytes are never allocated for.
        var huge = Write("huge", Idx(0x08, [65536, 65536], []));
        e = Bad(() => IdxFile.Read(huge));
        Assert.Contains("[65536, 65536]", e.Message);
        Assert.Contains("more data than an array can hold", e.Message);

        // int32 elements: 300M elements are 1.2 GB of data, over the limit even though the count alone fits.
        var wide = Write("wide", Idx(0x0C, [600_000_000], []));
        Assert.Contains("more data than an array can hold", Bad(() => IdxFile.Read(wide)).Message);

        // A plausible header with too little data: refused before reading.
        var big = Write("big", Idx(0x08, [60000, 28, 28], [1, 2, 3]));
        e = Bad(() => IdxFile.Read(big));
        Assert.Contains("promises 47040016 bytes", e.Message);
        Assert.Contains("holds 19", e.Message);
    }

    [Fact]
    public void IdxCorruptGzipAndMissingFile()
    {
        var gz = Gzip(Idx(0x08, [4], [1, 2, 3, 4]));
        for (var i = 10; i < gz.Length - 8; i++)
        {
            gz[i] ^= 0x5A;
        }

        var path = Write("corrupt.gz", gz);
        var e = Bad(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);

        var missing = Path.Combine(_dir, "nope");
        var nf = Assert.Throws<FileNotFoundException>(() => IdxFile.Read(missing));
        Assert.Contains(missing, nf.Message);
        Assert.Equal(missing, nf.FileName);
    }

    // ---------------------------------------------------------------- Fashion-MNIST

    private string FashionDir(int train = 3, int trainLabels = 3, int test = 2, bool gzip = true, byte maxLabel = 9)
    {
        var dir = Directory.CreateDirectory(Path.Combine(_dir, $"fm-{Guid.NewGuid():N}")).FullName;
        void Put(string name, byte[] raw) => File.WriteAllBytes(Path.Combine(dir, gzip ? name + ".gz" : name), gzip ? Gzip(raw) : raw);
        Put("train-images-idx3-ubyte", Idx(0x08, [train, 2, 2], [.. Enumerable.Range(0, train * 4).Select(i => (byte)(i * 10))]));
        Put("train-labels-idx1-ubyte", Idx(0x08, [trainLabels], [.. Enumerable.Range(0, trainLabels).Select(i => (byte)(i == 0 ? maxLabel : i))]));
        Put("t10k-images-idx3-ubyte", Idx(0x08, [test, 2, 2], [.. Enumerable.Range(0, test * 4).Select(i => (byte)(255 - i))]));
        Put("t10k-labels-idx1-ubyte", Idx(0x08, [test], [.. Enumerable.Range(0, test).Select(i => (byte)(7 - i))]));
        return dir;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void FashionMnistLoadsBothSplits(bool gzip)
    {
        var dir = FashionDir(gzip: gzip);
        var d = FashionMnist.Load(dir);
        Assert.Equal(dir, d.Directory);
        Assert.Equal(3, d.Train.Count);
        Assert.Equal(2, d.Test.Count);
        Assert.Equal(new[] { 3, 4 }, d.Train.Features.Shape.ToArray());
        Assert.Equal(DType.Float32, d.Train.Features.DType);
        Assert.Equal(new long[] { 9, 1, 2 }, d.Train.Labels.ToArray<long>());
        Assert.Equal(new long[] { 7, 6 }, d.Test.Labels.ToArray<long>());
        Assert.Equal(110 / 255f, d.Train.Features[2, 3]);
        Assert.Equal(1f, d.Test.Features[0, 0]);
        Assert.Equal(248 / 255f, d.Test.Features[1, 3]);

        var cube = FashionMnist.Load(dir, flatten: false);
        Assert.Equal(new[] { 2, 2, 2 }, cube.Test.Features.Shape.ToArray());
    }

    [Fact]
    public void FashionMnistAcceptsTheDottedSpellingAndMixedCompression()
    {
        var dir = FashionDir(gzip: false);
        File.Move(Path.Combine(dir, "train-images-idx3-ubyte"), Path.Combine(dir, "train-images.idx3-ubyte"));
        var labels = Path.Combine(dir, "t10k-labels-idx1-ubyte");
        File.WriteAllBytes(labels + ".gz", Gzip(File.ReadAllBytes(labels)));
        File.Delete(labels);
        var d = FashionMnist.Load(dir);
        Assert.Equal(3, d.Train.Count);
        Assert.Equal(new long[] { 7, 6 }, d.Test.Labels.ToArray<long>());
    }

    [Fact]
    public void FashionMnistClassNamesAndDefaultDirectory()
    {
        Assert.Equal("/usr/share/datasets/fashion-mnist", FashionMnist.DefaultDirectory);
        Assert.Equal(
            new[] { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" },
            FashionMnist.ClassNames);
        Assert.Equal(FashionMnist.ClassCount, FashionMnist.ClassNames.Count);
    }

    [Fact]
    public void FashionMnistMismatchedCountsNameBothFiles()
    {
        var dir = FashionDir(train: 3, trainLabels: 4);
        var e = Bad(() => FashionMnist.Load(dir));
        Assert.Contains("train-images-idx3-ubyte.gz' holds 3 images", e.Message);
        Assert.Contains("train-labels-idx1-ubyte.gz' holds 4 labels", e.Message);
    }

    [Fact]
    public void FashionMnistLabelOutOfRangeIsNamed()
    {
        var dir = FashionDir(maxLabel: 10);
        var e = Bad(() => FashionMnist.Load(dir));
        Assert.Contains("label 0", e.Message);
        Assert.Contains("is 10", e.Message);
        Assert.Contains("train-labels-idx1-ubyte", e.Message);
    }

    [Fact]
    public void FashionMnistMissingDirectoryOrFileSaysHowToInstall()
    {
        var missingDir = Path.Combine(_dir, "no-such-dir");
        var e = Assert.Throws<FileNotFoundException>(() => FashionMnist.Load(missingDir));
        Assert.Contains(missingDir, e.Message);
        Assert.Contains("apt-get install -y dataset-fashion-mnist", e.Message);
        Assert.Contains("--data DIR", e.Message);

        var dir = FashionDir();
        File.Delete(Path.Combine(dir, "t10k-images-idx3-ubyte.gz"));
        e = Assert.Throws<FileNotFoundException>(() => FashionMnist.Load(dir));
        Assert.Contains("lacks t10k-images-idx3-ubyte(.gz)", e.Message);
        Assert.DoesNotContain("train-images-idx3-ubyte(.gz)", e.Message);
        Assert.Contains("apt-get install -y dataset-fashion-mnist", e.Message);
        Assert.Contains("--data DIR", e.Message);
        Assert.Equal(Path.Combine(dir, "t10k-images-idx3-ubyte"), e.FileName);
    }

    [Fact]
    public void FashionMnistTrainAndTestImageSizesMustAgree()
    {
        var dir = FashionDir(gzip: false);
        File.WriteAllBytes(Path.Combine(dir, "t10k-images-idx3-ubyte"), Idx(0x08, [2, 1, 3], [1, 2, 3, 4, 5, 6]));
        var e = Bad(() => FashionMnist.Load(dir));
        Assert.Contains("[3, 4]", e.Message);
        Assert.Contains("[2, 3]", e.Message);
    }

    // ---------------------------------------------------------------- CSV

    [Fact]
    public void CsvWithHeaderReadsValuesAndNames()
    {
        var path = WriteText("t.csv", "x,y,label\n1.5,-2,0\n3e2, 4.25 ,1\n\n-0.125,NaN,2\n");
        var t = CsvReader.Read(path);
        Assert.Equal(new[] { "x", "y", "label" }, t.ColumnNames);
        Assert.Equal(DType.Float64, t.Data.DType);
        Assert.Equal(new[] { 3, 3 }, t.Data.Shape.ToArray());
        Assert.Equal(3, t.RowCount);
        Assert.Equal(3, t.ColumnCount);
        var v = t.Data.ToArray();
        Assert.Equal(new[] { 1.5, -2, 0, 300, 4.25, 1, -0.125 }, v[..7]);
        Assert.True(double.IsNaN(v[7]));
        Assert.Equal(2.0, v[8]);
        Assert.Equal(new[] { 0.0, 1, 2 }, t.Column("label").ToArray());
        Assert.Equal(1, t.ColumnIndex("y"));
        var e = Assert.Throws<KeyNotFoundException>(() => t.Column("z"));
        Assert.Contains("'z'", e.Message);
        Assert.Contains("'label'", e.Message);
    }

    [Fact]
    public void CsvHeaderIsOptional()
    {
        var text = "1,2\n3,4\n";
        var auto = CsvReader.Parse(text);
        Assert.Equal(new[] { "column1", "column2" }, auto.ColumnNames);
        Assert.Equal(new double[] { 1, 2, 3, 4 }, auto.Data.ToArray());

        // Forced: the first row is taken as names even though it is numeric.
        var forced = CsvReader.Parse(text, new CsvOptions { HasHeader = true });
        Assert.Equal(new[] { "1", "2" }, forced.ColumnNames);
        Assert.Equal(new double[] { 3, 4 }, forced.Data.ToArray());

        // Forbidden: a text first row is then an error, not a header.
        var e = Bad(() => CsvReader.Parse("a,b\n1,2\n", new CsvOptions { HasHeader = false }, "inline"));
        Assert.Contains("'inline' line 1, column 1 ('column1'): 'a' is not a number", e.Message);

        // Header only: zero rows, the columns still known.
        var empty = CsvReader.Parse("a;b;c\n", new CsvOptions { Delimiter = ';' });
        Assert.Equal(new[] { 0, 3 }, empty.Data.Shape.ToArray());
        Assert.Equal(new[] { "a", "b", "c" }, empty.ColumnNames);
    }

    [Fact]
    public void CsvDelimiterQuotesAndCommentsAndInvariantCulture()
    {
        var saved = CultureInfo.CurrentCulture;
        try
        {
            // In German "1,5" is one and a half; the reader must ignore the machine's culture.
            CultureInfo.CurrentCulture = CultureInfo.GetCultureInfo("de-DE");
            var t = CsvReader.Parse("# a comment\n\"a;1\";\"b \"\"q\"\"\"\n1.5;\"2.5\"\n  # indented comment\n-3;1e-3\n",
                new CsvOptions { Delimiter = ';', CommentChar = '#' });
            Assert.Equal(new[] { "a;1", "b \"q\"" }, t.ColumnNames);
            Assert.Equal(new[] { 1.5, 2.5, -3, 0.001 }, t.Data.ToArray());

            var tab = CsvReader.Parse("p\tq\n1\t2\n", new CsvOptions { Delimiter = '\t' });
            Assert.Equal(new[] { "p", "q" }, tab.ColumnNames);
            Assert.Equal(new double[] { 1, 2 }, tab.Data.ToArray());

            // A decimal comma is not a number in the invariant culture.
            var e = Bad(() => CsvReader.Parse("a;b\n1,5;2\n", new CsvOptions { Delimiter = ';' }));
            Assert.Contains("line 2, column 1 ('a'): '1,5' is not a number", e.Message);
        }
        finally
        {
            CultureInfo.CurrentCulture = saved;
        }
    }

    [Fact]
    public void CsvNonNumericFieldNamesFileLineAndColumn()
    {
        var path = WriteText("bad.csv", "x,y\n1,2\n\n3,oops\n");
        var e = Bad(() => CsvReader.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("line 4, column 2 ('y'): 'oops' is not a number", e.Message);

        e = Bad(() => CsvReader.Parse("x,y\n1,\n"));
        Assert.Contains("line 2, column 2 ('y'): an empty field is not a number", e.Message);
    }

    [Fact]
    public void CsvRaggedRowNamesLineAndCounts()
    {
        var path = WriteText("ragged.csv", "a,b,c\n1,2,3\n4,5\n");
        var e = Bad(() => CsvReader.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("line 3: ragged row: 2 fields but the header (line 1) has 3", e.Message);

        e = Bad(() => CsvReader.Parse("\n1,2\n3,4,5\n"));
        Assert.Contains("line 3: ragged row: 3 fields but the first row (line 2) has 2", e.Message);
    }

    [Fact]
    public void CsvBadInputsAreRefused()
    {
        Assert.Contains("no header and no rows", Bad(() => CsvReader.Parse("\n  \n")).Message);
        Assert.Contains("unterminated quoted field", Bad(() => CsvReader.Parse("\"a,b\n")).Message);
        Assert.Contains("after the closing quote", Bad(() => CsvReader.Parse("\"a\"x,b\n")).Message);
        Assert.Throws<ArgumentException>(() => CsvReader.Parse("1\n", new CsvOptions { Delimiter = '"' }));
        Assert.Throws<ArgumentException>(() => CsvReader.Parse("1\n", new CsvOptions { Delimiter = '5' }));
        var nf = Assert.Throws<FileNotFoundException>(() => CsvReader.Read(Path.Combine(_dir, "none.csv")));
        Assert.Contains("none.csv", nf.Message);
    }

    // ---------------------------------------------------------------- mini-batches

    /// <summary>n rows whose features encode their index: row i is [i, 1000 + i] (float32) and its label is 10 i.</summary>
    private static TensorDataset Indexed(int n) => new(
        Tensor.FromArray(Enumerable.Range(0, n).SelectMany(i => new[] { (float)i, 1000f + i }).ToArray(), n, 2),
        Tensor.FromArray(Enumerable.Range(0, n).Select(i => 10L * i).ToArray(), n));

    [Fact]
    public void LoaderVisitsEveryRowOncePerEpochWithMatchingLabels()
    {
        var loader = new DataLoader(Indexed(10), batchSize: 4, seed: 7);
        Assert.Equal(3, loader.BatchCount);
        for (var epoch = 0; epoch < 3; epoch++)
        {
            var batches = loader.Epoch(epoch).ToList();
            Assert.Equal(new[] { 4, 4, 2 }, batches.Select(b => b.Count).ToArray());
            var seen = new List<int>();
            foreach (var b in batches)
            {
                Assert.Equal(DType.Float32, b.Features.DType);
                Assert.Equal(DType.Int64, b.Labels.DType);
                Assert.Equal(new[] { b.Count, 2 }, b.Features.Shape.ToArray());
                Assert.Equal(new[] { b.Count }, b.Labels.Shape.ToArray());
                var f = b.Features.ToArray<float>();
                var l = b.Labels.ToArray<long>();
                for (var r = 0; r < b.Count; r++)
                {
                    var i = b.Indices[r];
                    Assert.Equal(i, (int)f[2 * r]);
                    Assert.Equal(1000 + i, (int)f[(2 * r) + 1]);
                    Assert.Equal(10L * i, l[r]);
                }

                seen.AddRange(b.Indices);
            }

            Assert.Equal(Enumerable.Range(0, 10), seen.Order());
            Assert.NotEqual(Enumerable.Range(0, 10), seen);
        }
    }

    [Fact]
    public void LoaderIsDeterministicForASeedAndReshufflesEachEpoch()
    {
        var data = Indexed(50);
        var a = new DataLoader(data, 8, seed: 42);
        var b = new DataLoader(data, 8, seed: 42);
        var c = new DataLoader(data, 8, seed: 43);

        for (var epoch = 0; epoch < 3; epoch++)
        {
            Assert.Equal(a.Permutation(epoch), b.Permutation(epoch));
            Assert.Equal(
                a.Epoch(epoch).SelectMany(x => x.Features.ToArray<float>()),
                b.Epoch(epoch).SelectMany(x => x.Features.ToArray<float>()));
            Assert.NotEqual(a.Permutation(epoch), c.Permutation(epoch));
        }

        // Every pair of the first five epochs differs.
        var perms = Enumerable.Range(0, 5).Select(a.Permutation).ToList();
        for (var i = 0; i < perms.Count; i++)
        {
            Assert.Equal(Enumerable.Range(0, 50), perms[i].Order());
            for (var j = i + 1; j < perms.Count; j++)
            {
                Assert.NotEqual(perms[i], perms[j]);
            }
        }

        // The order depends only on (seed, epoch), not on what was enumerated before.
        var fresh = new DataLoader(data, 8, seed: 42);
        Assert.Equal(perms[3], fresh.Permutation(3));
        Assert.NotEqual(DataLoader.MixSeed(42, 1), DataLoader.MixSeed(43, 0));
        Assert.NotEqual(DataLoader.MixSeed(0, 1), DataLoader.MixSeed(1, 0));
    }

    [Fact]
    public void LoaderShuffleIsUniformOverPermutations()
    {
        // 6000 epochs of 3 rows: each of the 3! orders should come up about 1000 times (a biased shuffle such as
        // Sattolo's, which never yields the identity, or one ignoring the epoch, fails this).
        var loader = new DataLoader(Indexed(3), 3, seed: 11);
        var counts = Enumerable.Range(0, 6000)
            .Select(e => string.Join(",", loader.Permutation(e)))
            .GroupBy(p => p)
            .ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(6, counts.Count);
        Assert.All(counts, kv => Assert.InRange(kv.Value, 850, 1150));
    }

    [Fact]
    public void LoaderDropLastAndNoShuffle()
    {
        var data = Indexed(10);
        var dropped = new DataLoader(data, 4, seed: 1, dropLast: true);
        Assert.Equal(2, dropped.BatchCount);
        var batches = dropped.Epoch(0).ToList();
        Assert.Equal(new[] { 4, 4 }, batches.Select(b => b.Count).ToArray());
        Assert.Equal(8, batches.SelectMany(b => b.Indices).Distinct().Count());

        var ordered = new DataLoader(data, 3, shuffle: false);
        Assert.Equal(4, ordered.BatchCount);
        for (var epoch = 0; epoch < 2; epoch++)
        {
            var list = ordered.Epoch(epoch).ToList();
            Assert.Equal(new[] { 0, 1, 2 }, list[0].Indices);
            Assert.Equal(new[] { 9 }, list[3].Indices);
            Assert.Equal(new float[] { 9, 1009 }, list[3].Features.ToArray<float>());
        }

        // Batch size larger than the data: one short batch, or none with dropLast.
        Assert.Single(new DataLoader(data, 64).Epoch(0));
        Assert.Empty(new DataLoader(data, 64, dropLast: true).Epoch(0));
        Assert.Empty(new DataLoader(Indexed(0), 4).Epoch(0));
    }

    [Fact]
    public void LoaderBatchesAreCopiesKeepingTrailingDimsAndDType()
    {
        var features = Tensor.Arange(24, DType.Float64).Reshape(6, 2, 2);
        var labels = Tensor.Arange(12, DType.Float32).Reshape(6, 2);
        var loader = new DataLoader(features, labels, 4, seed: 3);
        var first = loader.Epoch(0).First();
        Assert.Equal(new[] { 4, 2, 2 }, first.Features.Shape.ToArray());
        Assert.Equal(DType.Float64, first.Features.DType);
        Assert.Equal(new[] { 4, 2 }, first.Labels.Shape.ToArray());
        Assert.Equal(DType.Float32, first.Labels.DType);
        var i0 = first.Indices[0];
        Assert.Equal(new double[] { 4 * i0, (4 * i0) + 1, (4 * i0) + 2, (4 * i0) + 3 }, first.Features.ToArray()[..4]);
        Assert.Equal(new double[] { 2 * i0, (2 * i0) + 1 }, first.Labels.ToArray()[..2]);
        Assert.False(first.Features.RequiresGrad);

        // Writing into a batch leaves the data set alone.
        first.Features.Span<double>().Fill(-1);
        Assert.Equal(Enumerable.Range(0, 24).Select(i => (double)i), features.ToArray());
    }

    [Fact]
    public void LoaderAndDatasetRefuseBadArguments()
    {
        var e = Assert.Throws<ArgumentException>(() => new TensorDataset(Tensor.Zeros(5, 2), Tensor.Zeros(4)));
        Assert.Contains("features have 5 rows", e.Message);
        Assert.Contains("labels have 4", e.Message);
        Assert.Throws<ArgumentException>(() => new TensorDataset(Tensor.Scalar(1), Tensor.Zeros(1)));
        var bs = Assert.Throws<ArgumentOutOfRangeException>(() => new DataLoader(Indexed(3), 0));
        Assert.Contains("at least 1, not 0", bs.Message);
        var data = Indexed(3);
        Assert.Throws<ArgumentOutOfRangeException>(() => data.Gather([0, 3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => data.Slice(2, 2));
        var s = data.Slice(1, 2);
        Assert.Equal(new long[] { 10, 20 }, s.Labels.ToArray<long>());
        Assert.Equal(new long[] { 20, 20, 0 }, data.Gather([2, 2, 0]).Labels.ToArray<long>());
    }

    // ---------------------------------------------------------------- synthetic sets

    [Fact]
    public void MoonsWithoutNoiseLieOnTwoInterleavedHalfCircles()
    {
        var m = SyntheticData.MakeMoons(101, noise: 0, seed: 5);
        Assert.Equal(new[] { 101, 2 }, m.Features.Shape.ToArray());
        Assert.Equal(DType.Float64, m.Features.DType);
        Assert.Equal(DType.Int64, m.Labels.DType);
        var xy = m.Features.ToArray();
        var labels = m.Labels.ToArray<long>();
        Assert.Equal(50, labels.Count(l => l == 0));
        Assert.Equal(51, labels.Count(l => l == 1));
        Assert.NotEqual(labels.Order(), labels); // shuffled

        for (var i = 0; i < labels.Length; i++)
        {
            double x = xy[2 * i], y = xy[(2 * i) + 1];
            if (labels[i] == 0)
            {
                Assert.Equal(1.0, Math.Sqrt((x * x) + (y * y)), 12);
                Assert.True(y >= -1e-12 && x >= -1 - 1e-12 && x <= 1 + 1e-12, $"outer point {i} ({x}, {y}) is off the upper half");
            }
            else
            {
                Assert.Equal(1.0, Math.Sqrt(((x - 1) * (x - 1)) + ((y - 0.5) * (y - 0.5))), 12);
                Assert.True(y <= 0.5 + 1e-12 && x >= -1e-12 && x <= 2 + 1e-12, $"inner point {i} ({x}, {y}) is off the lower half");
            }
        }

        // The end points of both arcs are there: (1, 0), (-1, 0) for class 0; (0, 0.5), (2, 0.5) for class 1.
        bool Has(double px, double py, long label) =>
            Enumerable.Range(0, labels.Length).Any(i => labels[i] == label && Math.Abs(xy[2 * i] - px) < 1e-12 && Math.Abs(xy[(2 * i) + 1] - py) < 1e-12);
        Assert.True(Has(1, 0, 0) && Has(-1, 0, 0) && Has(0, 0.5, 1) && Has(2, 0.5, 1));

        var unshuffled = SyntheticData.MakeMoons(4, shuffle: false).Labels.ToArray<long>();
        Assert.Equal(new long[] { 0, 0, 1, 1 }, unshuffled);
    }

    [Fact]
    public void MoonsNoiseIsSeededAndHasTheRequestedSpread()
    {
        var a = SyntheticData.MakeMoons(2000, noise: 0.1, seed: 3);
        var b = SyntheticData.MakeMoons(2000, noise: 0.1, seed: 3);
        var c = SyntheticData.MakeMoons(2000, noise: 0.1, seed: 4);
        Assert.Equal(a.Features.ToArray(), b.Features.ToArray());
        Assert.Equal(a.Labels.ToArray<long>(), b.Labels.ToArray<long>());
        Assert.NotEqual(a.Features.ToArray(), c.Features.ToArray());

        // Same seed without shuffling: subtracting the clean curve leaves noise with standard deviation about 0.1.
        var clean = SyntheticData.MakeMoons(2000, 0, 3, shuffle: false).Features.ToArray();
        var noisy = SyntheticData.MakeMoons(2000, 0.1, 3, shuffle: false).Features.ToArray();
        var diffs = clean.Zip(noisy, (p, q) => q - p).ToArray();
        var mean = diffs.Average();
        var std = Math.Sqrt(diffs.Select(d => (d - mean) * (d - mean)).Average());
        Assert.InRange(mean, -0.01, 0.01);
        Assert.InRange(std, 0.095, 0.105);

        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticData.MakeMoons(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticData.MakeMoons(10, noise: -0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticData.MakeMoons(10, noise: double.NaN));
        Assert.Equal(new[] { 0, 2 }, SyntheticData.MakeMoons(0).Features.Shape.ToArray());
    }

    [Fact]
    public void SpiralsHaveBalancedArmsOnTheirCurves()
    {
        const int K = 3, N = 40;
        var s = SyntheticData.MakeSpirals(K, N, noise: 0, seed: 1);
        Assert.Equal(new[] { K * N, 2 }, s.Features.Shape.ToArray());
        var xy = s.Features.ToArray();
        var labels = s.Labels.ToArray<long>();
        for (var c = 0; c < K; c++)
        {
            Assert.Equal(N, labels.Count(l => l == c));
        }

        Assert.NotEqual(labels.Order(), labels);

        // Unshuffled, point i of arm c is at radius i/(N-1) and angle 2πc/K + 2π r.
        var ordered = SyntheticData.MakeSpirals(K, N, noise: 0, shuffle: false);
        var oxy = ordered.Features.ToArray();
        var olab = ordered.Labels.ToArray<long>();
        for (var c = 0; c < K; c++)
        {
            for (var i = 0; i < N; i++)
            {
                var k = (c * N) + i;
                Assert.Equal(c, olab[k]);
                var r = (double)i / (N - 1);
                var theta = (2 * Math.PI * c / K) + (2 * Math.PI * r);
                Assert.Equal(r * Math.Cos(theta), oxy[2 * k], 12);
                Assert.Equal(r * Math.Sin(theta), oxy[(2 * k) + 1], 12);
            }
        }

        // The arms are interleaved: at the same radius, arms are 2π/K apart in angle, i.e. the end points differ.
        Assert.Equal(1.0, oxy[2 * (N - 1)], 12);
        Assert.Equal(Math.Cos(2 * Math.PI / K), oxy[2 * ((2 * N) - 1)], 12);

        // Shuffled and ordered sets hold the same points.
        Assert.Equal(
            oxy.Chunk(2).Select(p => (Math.Round(p[0], 12), Math.Round(p[1], 12))).Order(),
            xy.Chunk(2).Select(p => (Math.Round(p[0], 12), Math.Round(p[1], 12))).Order());
    }

    [Fact]
    public void SpiralsAreSeededAndValidated()
    {
        var a = SyntheticData.MakeSpirals(4, 25, noise: 0.2, seed: 9);
        var b = SyntheticData.MakeSpirals(4, 25, noise: 0.2, seed: 9);
        var c = SyntheticData.MakeSpirals(4, 25, noise: 0.2, seed: 10);
        Assert.Equal(a.Features.ToArray(), b.Features.ToArray());
        Assert.Equal(a.Labels.ToArray<long>(), b.Labels.ToArray<long>());
        Assert.NotEqual(a.Features.ToArray(), c.Features.ToArray());
        var clean = SyntheticData.MakeSpirals(4, 25, noise: 0, seed: 9, shuffle: false).Features.ToArray();
        var noisy = SyntheticData.MakeSpirals(4, 25, noise: 0.2, seed: 9, shuffle: false).Features.ToArray();
        Assert.All(clean.Zip(noisy), p => Assert.InRange(Math.Abs(p.First - p.Second), 0, 1.5));
        Assert.Contains(clean.Zip(noisy), p => Math.Abs(p.First - p.Second) > 0.05);

        Assert.Contains("at least 1, not 0", Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticData.MakeSpirals(0, 5)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticData.MakeSpirals(2, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticData.MakeSpirals(2, 5, noise: double.PositiveInfinity));
        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticData.MakeSpirals(2, 5, turns: double.NaN));
        Assert.Equal(new long[] { 0, 1 }, SyntheticData.MakeSpirals(2, 1, shuffle: false).Labels.ToArray<long>());
    }
}
