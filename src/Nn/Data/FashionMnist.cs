namespace Autograd.Nn.Data;

/// <summary>The Fashion-MNIST training and test sets as loaded by <see cref="FashionMnist.Load"/>.</summary>
/// <param name="Train">60 000 training images (float32 [n, rows·cols] in [0, 1]) with int64 labels [n] in 0 … 9.</param>
/// <param name="Test">10 000 test images and labels, in the same form.</param>
/// <param name="Directory">The directory the files were read from.</param>
public sealed record FashionMnistData(TensorDataset Train, TensorDataset Test, string Directory);

/// <summary>
/// Loads Fashion-MNIST (Zalando's 28×28 grey-scale clothing images in ten classes) from the four IDX files of its
/// distribution, gzip-compressed or raw.
/// </summary>
public static class FashionMnist
{
    /// <summary>Where the Debian package <c>dataset-fashion-mnist</c> installs the files.</summary>
    public const string DefaultDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>The file name of the training images, without a <c>.gz</c> suffix.</summary>
    public const string TrainImagesFile = "train-images-idx3-ubyte";

    /// <summary>The file name of the training labels, without a <c>.gz</c> suffix.</summary>
    public const string TrainLabelsFile = "train-labels-idx1-ubyte";

    /// <summary>The file name of the test images, without a <c>.gz</c> suffix.</summary>
    public const string TestImagesFile = "t10k-images-idx3-ubyte";

    /// <summary>The file name of the test labels, without a <c>.gz</c> suffix.</summary>
    public const string TestLabelsFile = "t10k-labels-idx1-ubyte";

    /// <summary>The number of classes.</summary>
    public const int ClassCount = 10;

    /// <summary>The class names, indexed by label: T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        Array.AsReadOnly(["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]);

    /// <summary>
    /// Reads the training and test sets from <paramref name="directory"/> (default <see cref="DefaultDirectory"/>).
    /// Each file may be raw or gzip-compressed with a <c>.gz</c> suffix; the MNIST mirrors' spelling with a dot
    /// (<c>train-images.idx3-ubyte</c>) is accepted too.
    /// </summary>
    /// <param name="directory">The directory holding the four files, or null for <see cref="DefaultDirectory"/>.</param>
    /// <param name="flatten">True (the default) for images of shape [n, rows·cols]; false for [n, rows, cols].</param>
    /// <exception cref="FileNotFoundException">
    /// The directory or one of the files is missing; the message says how to install the data set
    /// (<c>apt-get install -y dataset-fashion-mnist</c>) or to pass <c>--data DIR</c>.
    /// </exception>
    /// <exception cref="InvalidDataException">
    /// A file is not a valid IDX image or label file, the image and label counts of a split differ, the training and
    /// test images differ in size, or a label is outside 0 … 9.
    /// </exception>
    public static FashionMnistData Load(string? directory = null, bool flatten = true)
    {
        var dir = directory ?? DefaultDirectory;
        var hint = $"Install the data set with `apt-get install -y dataset-fashion-mnist` (it goes to {DefaultDirectory}) " +
            $"or pass --data DIR naming a directory that holds {TrainImagesFile}, {TrainLabelsFile}, {TestImagesFile} and {TestLabelsFile} (each optionally .gz).";
        if (!System.IO.Directory.Exists(dir))
        {
            throw new FileNotFoundException($"Fashion-MNIST: the directory '{dir}' does not exist. {hint}", dir);
        }

        var names = new[] { TrainImagesFile, TrainLabelsFile, TestImagesFile, TestLabelsFile };
        var paths = new string?[names.Length];
        var missing = new List<string>();
        for (var i = 0; i < names.Length; i++)
        {
            paths[i] = Find(dir, names[i]);
            if (paths[i] is null)
            {
                missing.Add(names[i] + "(.gz)");
            }
        }

        if (missing.Count > 0)
        {
            throw new FileNotFoundException(
                $"Fashion-MNIST: '{dir}' lacks {string.Join(", ", missing)}. {hint}", Path.Combine(dir, missing[0].Replace("(.gz)", "", StringComparison.Ordinal)));
        }

        var train = LoadSplit(paths[0]!, paths[1]!, flatten);
        var test = LoadSplit(paths[2]!, paths[3]!, flatten);
        var trainRow = train.Features.Shape.ToArray()[1..];
        var testRow = test.Features.Shape.ToArray()[1..];
        if (!trainRow.AsSpan().SequenceEqual(testRow))
        {
            throw new InvalidDataException(
                $"Fashion-MNIST: the training images ('{paths[0]}') have shape {train.Features.Shape} but the test images ('{paths[2]}') {test.Features.Shape}; " +
                "both must have the same image size.");
        }

        return new FashionMnistData(train, test, dir);
    }

    /// <summary>Reads one split: an image file and a label file whose counts must agree and whose labels must lie in 0 … 9.</summary>
    /// <exception cref="InvalidDataException">A file is invalid, the counts differ, or a label is out of range.</exception>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    public static TensorDataset LoadSplit(string imagesPath, string labelsPath, bool flatten = true)
    {
        var images = IdxFile.ReadImages(imagesPath, flatten);
        var labels = IdxFile.ReadLabels(labelsPath);
        if (images.Shape[0] != labels.Shape[0])
        {
            throw new InvalidDataException(
                $"Fashion-MNIST: '{imagesPath}' holds {images.Shape[0]} images but '{labelsPath}' holds {labels.Shape[0]} labels; the counts must agree.");
        }

        var values = labels.AsSpan<long>();
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] >= ClassCount)
            {
                throw new InvalidDataException(
                    $"Fashion-MNIST: label {i} in '{labelsPath}' is {values[i]}, outside the class range 0 … {ClassCount - 1}.");
            }
        }

        return new TensorDataset(images, labels);
    }

    private static string? Find(string dir, string name)
    {
        var dotted = ReplaceFirst(name, "-idx", ".idx");
        foreach (var candidate in new[] { name, name + ".gz", dotted, dotted + ".gz" })
        {
            var p = Path.Combine(dir, candidate);
            if (File.Exists(p))
            {
                return p;
            }
        }

        return null;
    }

    private static string ReplaceFirst(string s, string what, string with)
    {
        var i = s.IndexOf(what, StringComparison.Ordinal);
        return i < 0 ? s : string.Concat(s.AsSpan(0, i), with, s.AsSpan(i + what.Length));
    }
}
