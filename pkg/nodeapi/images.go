package nodeapi

import "time"

// Image routes of one node's engine (docs/images.md). {node} is the node whose engine holds
// (or receives) the image.
const (
	ImagesPattern        = "GET /node/{node}/images"
	ImageSavePattern     = "GET /node/{node}/images/archive"
	ImageLoadPattern     = "PUT /node/{node}/images/archive"
	ImagePullPattern     = "POST /node/{node}/images/pull"
	PeerImagesPath       = "/cluster/images"
	PeerImageSavePath    = "/cluster/images/archive"
	PeerImagesPattern    = "GET " + PeerImagesPath
	PeerImageSavePattern = "GET " + PeerImageSavePath
)

// ImagesPath and ImageArchivePath are the image paths of one node (the archive takes ?ref=).
func ImagesPath(node string) string       { return "/node/" + node + "/images" }
func ImageArchivePath(node string) string { return "/node/" + node + "/images/archive" }

// ImagePullPath makes a node fetch an image through its pull order (takes ?ref=).
func ImagePullPath(node string) string { return "/node/" + node + "/images/pull" }

// ImageInfo is one image of a node's engine.
type ImageInfo struct {
	// ID is the image's content address ("sha256:...").
	ID          string    `json:"id"`
	RepoTags    []string  `json:"repoTags,omitempty"`
	RepoDigests []string  `json:"repoDigests,omitempty"`
	SizeBytes   int64     `json:"sizeBytes"`
	Created     time.Time `json:"created,omitempty"`
}

// ImageList is GET /node/{node}/images.
type ImageList struct {
	Node  string      `json:"node"`
	Items []ImageInfo `json:"items"`
}

// ImageLoadResult is the answer of PUT /node/{node}/images/archive: what the engine loaded.
type ImageLoadResult struct {
	Node string `json:"node"`
	// Loaded are the references (and, for untagged images, IDs) the engine reports loaded.
	Loaded []string `json:"loaded"`
	// IDs are the loaded images' IDs, in the order of Loaded.
	IDs   []string `json:"ids,omitempty"`
	Bytes int64    `json:"bytes"`
}

// ImagePullResult is the answer of POST /node/{node}/images/pull?ref=REF: the node holds REF.
type ImagePullResult struct {
	Node string `json:"node"`
	Ref  string `json:"ref"`
	// ID is the image's ID on the node.
	ID string `json:"id"`
	// From is where it came from: "local" (it was already there), a node's name, or
	// "registry".
	From string `json:"from"`
	// Bytes is the archive's size when it came from a node.
	Bytes int64 `json:"bytes,omitempty"`
}
