"""Synoptic and mesoscale eddies of the HRRR-like grid: a random streamfunction with the atmosphere's spectrum.

The analytic flow (:mod:`flow`: planetary Rossby waves and Gaussian cyclones) is smooth: on its own
its kinetic-energy spectrum falls off far more steeply than the atmosphere's. This module adds what
it lacks: a streamfunction ``psi`` whose kinetic-energy spectrum follows the Nastrom-Gage shape,

    E(k) ~ k**-3 at synoptic scales, turning to k**-5/3 below ``eddy_crossover_km``,

with the largest scales (beyond ``eddy_large_km``) left to the analytic flow. Each Fourier mode is an
Ornstein-Uhlenbeck process: it decays with the eddy turnover time ``tau(k)`` (``eddy_tau_h`` at the
crossover and above, shorter for smaller eddies as ``lambda**(2/3)``), is renewed by random forcing,
and is carried by the domain-mean steering wind (a phase shift). A forecast continues the eddies of
its analysis with its own random forcing, so its errors grow from the small scales upward, as a real
forecast's do.

The eddies are nondivergent and geostrophic: ``u = -dpsi/dy``, ``v = dpsi/dx`` (grid axes taken as
east and north, as elsewhere in the generator), and heights ``z' = f psi / g``. The same pattern is
applied at every level, scaled by :data:`LEVEL_COEF` (equivalent barotropic, weaker near the
ground). The domain is treated as periodic on a padded grid, so no eddy wraps visibly across an edge.
"""

from __future__ import annotations

import numpy as np
from scipy import fft

from workbench.sample.params import AtmosphereParams

GRAVITY = 9.80665
OMEGA = 7.292e-5

#: Strength of the eddies at each level relative to 850 hPa.
LEVEL_COEF = {"z500": 1.3, "z850": 1.0, "sfc": 0.7}


class Eddies:
    """The eddy streamfunction on one limited-area grid, in spectral form.

    Parameters
    ----------
    shape : (int, int)
        Grid shape (rows, columns).
    spacing_m : float
        Grid spacing.
    lat : ndarray
        Latitude of every grid point (for the Coriolis parameter of the heights).
    params : AtmosphereParams
        ``eddy_*`` fields set the spectrum, strength and time scales.
    rng : numpy.random.Generator
        Draws the initial eddies (from the stationary distribution).
    """

    def __init__(
        self,
        shape: tuple[int, int],
        spacing_m: float,
        lat: np.ndarray,
        params: AtmosphereParams,
        rng: np.random.Generator,
    ) -> None:
        self.shape = shape
        self.spacing_m = spacing_m
        # pad by a quarter of the domain on each axis (FFT-friendly sizes): the periodic copy's seam
        # then lies outside the grid
        self.padded = tuple(fft.next_fast_len(int(np.ceil(1.25 * n)) + 2) for n in shape)
        ky = np.fft.fftfreq(self.padded[0], spacing_m)  # cycles per metre
        kx = np.fft.fftfreq(self.padded[1], spacing_m)
        self.kx, self.ky = np.meshgrid(kx, ky)
        k = np.hypot(self.kx, self.ky)
        k[0, 0] = k[0, 1]  # the mean mode gets no energy (below); any finite k keeps the tables finite
        self.k = k
        wavelength_km = 1e-3 / k
        kc = 1.0 / (params.eddy_crossover_km * 1e3)
        # E(k): k^-3 joined to k^-5/3 at the crossover (a cube-norm sum, so the turn is sharper than a
        # plain sum's and each range keeps its own slope); large scales tapered off
        energy = ((k**-3.0) ** 3 + (kc ** (-4.0 / 3.0) * k ** (-5.0 / 3.0)) ** 3) ** (1.0 / 3.0)
        energy *= 1.0 - np.exp(-((params.eddy_large_km / wavelength_km) ** 4))
        energy[0, 0] = 0.0  # no domain-mean wind: that is the analytic flow's
        # variance of psi per mode: E(k) spread over the ring 2 pi k, and KE = k^2 psi^2
        shape_psi = energy / (k * (2 * np.pi * k) ** 2)
        n = self.padded[0] * self.padded[1]
        # var(u) + var(v) of the real part of the inverse transform, per unit of the shape's scale
        ke = 0.5 * np.sum((2 * np.pi * k) ** 2 * shape_psi) / n**2
        self.var = shape_psi * (params.eddy_rms_ms**2 / ke)
        self.tau_h = params.eddy_tau_h * np.minimum(1.0, wavelength_km / params.eddy_crossover_km) ** (2.0 / 3.0)
        self.f = 2 * OMEGA * np.sin(np.deg2rad(lat))
        self.psi_hat = self._noise(rng, 1.0)
        self._fields: dict[str, np.ndarray] | None = None

    def _noise(self, rng: np.random.Generator, scale: np.ndarray | float) -> np.ndarray:
        z = rng.standard_normal(self.padded) + 1j * rng.standard_normal(self.padded)
        return z * np.sqrt(0.5 * self.var) * scale

    def copy(self) -> Eddies:
        """A copy that evolves independently (the spectral tables are shared: they never change)."""
        other = Eddies.__new__(Eddies)
        other.__dict__.update(self.__dict__)
        other.psi_hat = self.psi_hat.copy()
        other._fields = None
        return other

    def step(self, dt_h: float, u_mean: float, v_mean: float, rng: np.random.Generator | None) -> None:
        """Advance by ``dt_h`` hours: carried by the mean wind, decayed, and (given ``rng``) renewed."""
        dt_s = dt_h * 3600.0
        shift = np.exp(-2j * np.pi * (self.kx * u_mean + self.ky * v_mean) * dt_s)
        decay = np.exp(-dt_h / self.tau_h)
        psi = self.psi_hat * shift * decay
        if rng is not None:
            psi = psi + self._noise(rng, np.sqrt(1.0 - decay**2))
        self.psi_hat = psi
        self._fields = None

    def perturb(self, rng: np.random.Generator, relative: float, crossover_km: float) -> None:
        """Add an analysis error: ``relative`` of each mode's spread at the crossover, more below it."""
        wavelength_km = 1e-3 / self.k
        scale = np.clip(relative * np.sqrt(np.maximum(1.0, crossover_km / np.maximum(wavelength_km, 1.0))), 0, 1)
        # mix toward an independent draw: the perturbed eddies keep the climatological spectrum
        self.psi_hat = self.psi_hat * np.sqrt(1 - scale**2) + self._noise(rng, scale)
        self._fields = None

    def fields(self) -> dict[str, np.ndarray]:
        """``u``, ``v`` (m/s, at 850 hPa strength) and ``z`` (m) of the eddies on the grid."""
        if self._fields is None:
            ny, nx = self.shape
            # a real field from the complex modes: the real part of the inverse transform
            psi = fft.ifft2(self.psi_hat, workers=1)
            u = fft.ifft2(-2j * np.pi * self.ky * self.psi_hat, workers=1)
            v = fft.ifft2(2j * np.pi * self.kx * self.psi_hat, workers=1)
            self._fields = {
                "u": u.real[:ny, :nx],
                "v": v.real[:ny, :nx],
                "z": psi.real[:ny, :nx] * self.f / GRAVITY,
            }
        return self._fields
