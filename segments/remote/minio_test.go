package remote

import (
	"crypto/md5"
	"io"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/minio/minio-go/v7"
)

func minioGetOpts() minio.GetObjectOptions { return minio.GetObjectOptions{} }

func readAllClose(o *minio.Object) ([]byte, error) {
	defer o.Close()
	return io.ReadAll(o)
}

func md5sum(b []byte) []byte {
	s := md5.Sum(b)
	return s[:]
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
