//! Paging: a checked page request and the page that answers it, with the total.

/// The largest page anyone may ask for.
pub const MAX_PAGE_SIZE: u32 = 100;

/// A page number (from 1) and a size (1 to [`MAX_PAGE_SIZE`]), checked at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    page: u32,
    page_size: u32,
}

/// Why a page request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageError {
    PageBelowOne,
    SizeOutOfRange,
}

impl PageRequest {
    pub fn new(page: i64, page_size: i64) -> Result<PageRequest, PageError> {
        let page = u32::try_from(page).ok().filter(|p| *p >= 1).ok_or(PageError::PageBelowOne)?;
        let page_size = u32::try_from(page_size)
            .ok()
            .filter(|s| (1..=MAX_PAGE_SIZE).contains(s))
            .ok_or(PageError::SizeOutOfRange)?;
        Ok(PageRequest { page, page_size })
    }

    pub fn page(&self) -> u32 {
        self.page
    }

    pub fn page_size(&self) -> u32 {
        self.page_size
    }

    /// How many items come before this page.
    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.page_size)
    }
}

/// One page of a list, with the number of items in the whole list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub request: PageRequest,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), total: self.total, request: self.request }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_requests_refuse_zero_negative_and_oversized_values() {
        assert_eq!(PageRequest::new(0, 10), Err(PageError::PageBelowOne));
        assert_eq!(PageRequest::new(-1, 10), Err(PageError::PageBelowOne));
        assert_eq!(PageRequest::new(1, 0), Err(PageError::SizeOutOfRange));
        assert_eq!(PageRequest::new(1, 101), Err(PageError::SizeOutOfRange));
        assert_eq!(PageRequest::new(3, 20).unwrap().offset(), 40);
    }
}
